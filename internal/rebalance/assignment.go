package rebalance

import (
	"fmt"
	"maps"
	"slices"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AssignmentVersion is the version of eddy's assignment that this package
// writes.
const AssignmentVersion = 1

// Assignment is what the group leader gives one member: its tasks, the
// topic partitions of its active tasks, and whether it should trigger a
// probing rebalance. It travels in the SyncGroup member
// assignment as a consumer-protocol assignment (kmsg.ConsumerMemberAssignment)
// whose topics are Partitions, the partitions kgo consumes, and whose user
// data carries eddy's versioned fields.
type Assignment struct {
	// Version is the eddy assignment version the leader wrote. Encode
	// ignores it and writes AssignmentVersion.
	Version uint8
	// ActiveTasks lists the tasks the member runs, sorted.
	ActiveTasks []processor.TaskID
	// StandbyTasks lists the tasks whose state the member keeps warm by
	// replaying their changelogs, sorted: standby replicas and warm-up
	// replicas alike. A member runs both the same way; only the leader
	// tells them apart (Plan.Warmups), and a warm-up that has caught up
	// becomes active in a later rebalance. Never a task of ActiveTasks.
	StandbyTasks []processor.TaskID
	// Partitions holds the topic partitions of ActiveTasks: every input
	// partition of each active task.
	Partitions map[string][]int32
	// ProbeRebalance asks the member to trigger a rebalance after the
	// probing rebalance interval (Config.ProbingRebalanceInterval), so that
	// the leader can move held tasks whose warm-ups have caught up, or
	// retry lags it could not fetch. The leader sets it on one member of
	// the group at most; the Balancer arms the timer.
	ProbeRebalance bool
}

// The bits of the assignment's flags field.
const flagProbeRebalance = 1 << 0

// Encode returns the assignment as a SyncGroup member assignment, with lists
// sorted and without duplicates. It fails on a negative task id or
// partition.
func (a Assignment) Encode() ([]byte, error) {
	const fail = "rebalance: encode assignment: %w"
	active, err := checkTasks("active tasks", a.ActiveTasks)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}
	standby, err := checkTasks("standby tasks", a.StandbyTasks)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}
	parts, err := normalizePartitions("assigned partitions", a.Partitions)
	if err != nil {
		return nil, fmt.Errorf(fail, err)
	}
	e := newEncoder(AssignmentVersion)
	e.tasks(active)
	e.tasks(standby)
	var flags uint64
	if a.ProbeRebalance {
		flags |= flagProbeRebalance
	}
	e.uvarint(flags)

	var env kmsg.ConsumerMemberAssignment
	for _, topic := range slices.Sorted(maps.Keys(parts)) {
		t := kmsg.NewConsumerMemberAssignmentTopic()
		t.Topic = topic
		t.Partitions = parts[topic]
		env.Topics = append(env.Topics, t)
	}
	env.UserData = e.buf
	return env.AppendTo(nil), nil
}

// DecodeAssignment decodes what Encode wrote, from this or any later version
// of eddy. It never panics: bytes that are not a consumer-protocol assignment
// carrying eddy's user data give an error wrapping ErrNotEddy, and eddy data
// that is truncated or corrupt one wrapping ErrMalformed. Lists and maps
// come back sorted, without duplicates, and nil when empty.
func DecodeAssignment(b []byte) (Assignment, error) {
	var env kmsg.ConsumerMemberAssignment
	if err := env.ReadFrom(b); err != nil {
		return Assignment{}, fmt.Errorf("%w: assignment: not a consumer protocol assignment: %v", ErrNotEddy, err)
	}
	var a Assignment
	if len(env.Topics) > 0 {
		parts := make(map[string][]int32, len(env.Topics))
		for _, t := range env.Topics {
			parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
		}
		var err error
		if a.Partitions, err = normalizePartitions("assigned partitions", parts); err != nil {
			return Assignment{}, fmt.Errorf("%w: assignment: %v", ErrMalformed, err)
		}
	}
	d := decoder{what: "assignment", b: env.UserData}
	a.Version = d.header()
	a.ActiveTasks = d.tasks("active tasks")
	a.StandbyTasks = d.tasks("standby tasks")
	flags := d.uvarint("flags")
	if a.Version <= AssignmentVersion && flags&^flagProbeRebalance != 0 {
		// A newer version may define more bits; this one defines one.
		d.fail("flags", fmt.Sprintf("unknown bits %#x", flags))
	}
	a.ProbeRebalance = flags&flagProbeRebalance != 0
	d.end(a.Version, AssignmentVersion)
	if d.err != nil {
		return Assignment{}, d.err
	}
	return a, nil
}
