package rebalance

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MemberMetadataVersion is the version of eddy's member metadata that this
// package writes.
const MemberMetadataVersion = 1

// MemberMetadata is what a member tells the group leader when it joins: who
// it is and what it owned. It travels in the JoinGroup protocol metadata as
// a consumer-protocol subscription (kmsg.ConsumerMemberMetadata, version 3)
// whose user data carries eddy's own versioned fields, as Kafka Streams
// does. The standard envelope keeps brokers and tools able to read the
// member's topics and owned partitions.
//
// In the envelope: Topics, OwnedPartitions, Generation and Rack. In eddy's
// user data: ProcessID, Endpoint, WorkerIndex, WorkerCount, ActiveTasks,
// StandbyTasks and TaskOffsetSums.
type MemberMetadata struct {
	// Version is the eddy metadata version the member wrote. Encode ignores
	// it and writes MemberMetadataVersion.
	Version uint8

	// ProcessID identifies the member's instance (process), which may run
	// several members (workers). It is a UUID the instance keeps across
	// restarts, so that tasks stay with the instance that has their state.
	ProcessID string
	// Endpoint is the instance's host:port for interactive queries, or "".
	Endpoint string
	// Rack is the member's rack, or "" (KIP-881).
	Rack string
	// WorkerIndex is the member's worker number within its instance, and
	// WorkerCount the instance's number of workers; 0 and 0 when not
	// reported. They are informational: the assignor groups members by
	// ProcessID.
	WorkerIndex, WorkerCount int

	// Topics lists the topics the member consumes, sorted.
	Topics []string
	// OwnedPartitions holds the partitions the member consumes now, from
	// its last assignment (kgo's current assignment at join time). The
	// cooperative step reads it: a partition that another member owns
	// cannot be handed over in the same rebalance.
	OwnedPartitions map[string][]int32
	// Generation is the group generation of the member's last assignment,
	// or -1. Of two members claiming one task, the higher generation wins.
	Generation int32

	// ActiveTasks lists the active tasks the member owned before this
	// rebalance; the assignor keeps them with it where balance allows.
	ActiveTasks []processor.TaskID
	// StandbyTasks lists the standby tasks the member owned before this
	// rebalance.
	StandbyTasks []processor.TaskID
	// TaskOffsetSums holds, per task whose state the member's instance
	// has, the sum of its changelog offsets: how far that state has caught
	// up.
	TaskOffsetSums map[processor.TaskID]int64
}

// Encode returns the metadata as a JoinGroup protocol metadata. Lists and
// maps are written sorted and without duplicates, so equal metadata encodes
// to equal bytes: Kafka compares a rejoining member's metadata to decide
// whether the group must rebalance. Encode fails on values the format cannot
// hold: a negative task id, partition, worker index or worker count.
func (m MemberMetadata) Encode() ([]byte, error) {
	const fail = "rebalance: encode member metadata: %w"
	active, err := checkTasks("active tasks", m.ActiveTasks)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}
	standby, err := checkTasks("standby tasks", m.StandbyTasks)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}
	sums := slices.SortedFunc(maps.Keys(m.TaskOffsetSums), compareTasks)
	for _, t := range sums {
		if err := checkTask(t); err != nil {
			return nil, fmt.Errorf(fail, fmt.Errorf("task offset sums: %w", err))
		}
	}
	if m.WorkerIndex < 0 || m.WorkerCount < 0 || m.WorkerIndex > math.MaxInt32 || m.WorkerCount > math.MaxInt32 {
		return nil, fmt.Errorf(fail, fmt.Errorf("worker index %d, count %d: out of range", m.WorkerIndex, m.WorkerCount))
	}
	owned, err := normalizePartitions("owned partitions", m.OwnedPartitions)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}

	e := newEncoder(MemberMetadataVersion)
	e.string(m.ProcessID)
	e.string(m.Endpoint)
	e.uvarint(uint64(m.WorkerIndex))
	e.uvarint(uint64(m.WorkerCount))
	e.tasks(active)
	e.tasks(standby)
	e.uvarint(uint64(len(sums)))
	for _, t := range sums {
		e.task(t)
		e.varint(m.TaskOffsetSums[t])
	}

	env := kmsg.NewConsumerMemberMetadata()
	env.Version = 3
	env.Topics = slices.Compact(slices.Sorted(slices.Values(m.Topics)))
	env.UserData = e.buf
	for _, topic := range slices.Sorted(maps.Keys(owned)) {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = topic
		op.Partitions = owned[topic]
		env.OwnedPartitions = append(env.OwnedPartitions, op)
	}
	env.Generation = m.Generation
	if m.Rack != "" {
		env.Rack = &m.Rack
	}
	return env.AppendTo(nil), nil
}

// DecodeMemberMetadata decodes what Encode wrote, from this or any later
// version of eddy. It never panics: bytes that are not a consumer-protocol
// subscription carrying eddy's user data give an error wrapping ErrNotEddy,
// and eddy data that is truncated or corrupt one wrapping ErrMalformed.
// Lists and maps come back sorted, without duplicates, and nil when empty.
func DecodeMemberMetadata(b []byte) (MemberMetadata, error) {
	var env kmsg.ConsumerMemberMetadata
	if err := env.ReadFrom(b); err != nil {
		return MemberMetadata{}, fmt.Errorf("%w: member metadata: not a consumer protocol subscription: %v", ErrNotEddy, err)
	}
	m := MemberMetadata{Generation: env.Generation}
	if len(env.Topics) > 0 {
		m.Topics = slices.Compact(slices.Sorted(slices.Values(env.Topics)))
	}
	if env.Rack != nil {
		m.Rack = *env.Rack
	}
	if len(env.OwnedPartitions) > 0 {
		owned := make(map[string][]int32, len(env.OwnedPartitions))
		for _, op := range env.OwnedPartitions {
			owned[op.Topic] = append(owned[op.Topic], op.Partitions...)
		}
		var err error
		if m.OwnedPartitions, err = normalizePartitions("owned partitions", owned); err != nil {
			return MemberMetadata{}, fmt.Errorf("%w: member metadata: %v", ErrMalformed, err)
		}
	}

	d := decoder{what: "member metadata", b: env.UserData}
	m.Version = d.header()
	m.ProcessID = d.string("process id")
	m.Endpoint = d.string("endpoint")
	m.WorkerIndex = int(d.int32("worker index"))
	m.WorkerCount = int(d.int32("worker count"))
	m.ActiveTasks = d.tasks("active tasks")
	m.StandbyTasks = d.tasks("standby tasks")
	if n := d.count("task offset sums", 3); n > 0 {
		m.TaskOffsetSums = make(map[processor.TaskID]int64, n)
		var prev processor.TaskID
		for i := range n {
			t := d.task("task offset sums")
			sum := d.varint("task offset sums")
			if d.err != nil {
				break
			}
			if i > 0 && !prev.Less(t) {
				d.fail("task offset sums", "tasks are not in strictly increasing order")
				break
			}
			prev = t
			m.TaskOffsetSums[t] = sum
		}
	}
	d.end(m.Version, MemberMetadataVersion)
	if d.err != nil {
		return MemberMetadata{}, d.err
	}
	return m, nil
}

// normalizePartitions returns a copy of a topic => partitions map with each
// topic's partitions sorted and unique and empty topics dropped; nil if
// nothing remains. It rejects negative partitions and empty topic names.
func normalizePartitions(field string, in map[string][]int32) (map[string][]int32, error) {
	var out map[string][]int32
	for topic, ps := range in {
		if len(ps) == 0 {
			continue
		}
		if topic == "" {
			return nil, fmt.Errorf("%s: empty topic name", field)
		}
		ps = slices.Compact(slices.Sorted(slices.Values(ps)))
		if ps[0] < 0 {
			return nil, fmt.Errorf("%s: topic %q: negative partition %d", field, topic, ps[0])
		}
		if out == nil {
			out = make(map[string][]int32, len(in))
		}
		out[topic] = ps
	}
	return out, nil
}
