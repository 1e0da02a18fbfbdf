package rebalance

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func tid(sub int, p int32) processor.TaskID { return processor.TaskID{Subtopology: sub, Partition: p} }

func fullMetadata() MemberMetadata {
	return MemberMetadata{
		Version:         MemberMetadataVersion,
		ProcessID:       "6f1c2a7e-2b7d-4f5e-9a39-0c1e5b8d4a21",
		Endpoint:        "10.0.0.7:8080",
		Rack:            "use1-az1",
		WorkerIndex:     2,
		WorkerCount:     4,
		Topics:          []string{"a", "b", "app-repartition"},
		OwnedPartitions: map[string][]int32{"a": {0, 3}, "b": {0, 3}},
		Generation:      12,
		ActiveTasks:     []processor.TaskID{tid(0, 0), tid(0, 3)},
		StandbyTasks:    []processor.TaskID{tid(1, 5), tid(300, 1<<30)},
		TaskOffsetSums:  map[processor.TaskID]int64{tid(0, 0): 1 << 40, tid(1, 5): 0, tid(2, 2): -2},
	}
}

func TestMemberMetadataRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   MemberMetadata
		want MemberMetadata // after normalization
	}{
		{name: "empty", in: MemberMetadata{}, want: MemberMetadata{Version: MemberMetadataVersion}},
		{name: "full", in: fullMetadata(), want: func() MemberMetadata {
			m := fullMetadata()
			m.Topics = []string{"a", "app-repartition", "b"}
			return m
		}()},
		{
			name: "unsorted with duplicates",
			in: MemberMetadata{
				ProcessID:       "p",
				Topics:          []string{"b", "a", "b"},
				OwnedPartitions: map[string][]int32{"a": {3, 0, 3}, "b": {}},
				Generation:      -1,
				ActiveTasks:     []processor.TaskID{tid(1, 0), tid(0, 3), tid(1, 0)},
				TaskOffsetSums:  map[processor.TaskID]int64{},
			},
			want: MemberMetadata{
				Version:         MemberMetadataVersion,
				ProcessID:       "p",
				Topics:          []string{"a", "b"},
				OwnedPartitions: map[string][]int32{"a": {0, 3}},
				Generation:      -1,
				ActiveTasks:     []processor.TaskID{tid(0, 3), tid(1, 0)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMemberMetadata(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestMemberMetadataEncodeIsDeterministic(t *testing.T) {
	a := fullMetadata()
	b := fullMetadata()
	b.Topics = []string{"b", "app-repartition", "a"}
	b.ActiveTasks = []processor.TaskID{tid(0, 3), tid(0, 0)}
	b.OwnedPartitions = map[string][]int32{"b": {3, 0}, "a": {3, 0}}
	ea, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map iteration order varies between runs
		eb, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ea, eb) {
			t.Fatal("equal metadata encoded to different bytes")
		}
	}
}

func TestMemberMetadataEncodeRejectsInvalid(t *testing.T) {
	for name, m := range map[string]MemberMetadata{
		"negative task partition": {ActiveTasks: []processor.TaskID{tid(0, -1)}},
		"negative sub-topology":   {StandbyTasks: []processor.TaskID{tid(-1, 0)}},
		"negative offset sum key": {TaskOffsetSums: map[processor.TaskID]int64{tid(0, -3): 1}},
		"negative worker":         {WorkerIndex: -1},
		"negative partition":      {OwnedPartitions: map[string][]int32{"a": {-1}}},
		"empty owned topic":       {OwnedPartitions: map[string][]int32{"": {1}}},
	} {
		if _, err := m.Encode(); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

func TestDecodeMemberMetadataRejects(t *testing.T) {
	valid, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	sticky := kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a"}, map[string][]int32{"a": {1}}, 3)
	withUserData := func(ud []byte) []byte {
		env := kmsg.NewConsumerMemberMetadata()
		env.Version = 3
		env.Topics = []string{"a"}
		env.UserData = ud
		return env.AppendTo(nil)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrNotEddy},
		{"garbage", []byte("hello, group"), ErrNotEddy},
		{"cooperative-sticky member", sticky, ErrNotEddy},
		{"no user data", withUserData(nil), ErrNotEddy},
		{"wrong magic", withUserData([]byte{0xED, 0x00, 1}), ErrNotEddy},
		{"version 0", withUserData([]byte{magic0, magic1, 0}), ErrMalformed},
		{"truncated", withUserData([]byte{magic0, magic1, 1, 5, 'a'}), ErrMalformed},
		{"trailing bytes", withUserData(append(userData(t, valid), 0)), ErrMalformed},
		{"lying count", withUserData([]byte{magic0, magic1, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0x03}), ErrMalformed},
		{"unsorted tasks", withUserData([]byte{magic0, magic1, 1, 0, 0, 0, 0, 2, 0, 2, 0, 1, 0, 0}), ErrMalformed},
		{"partition out of range", withUserData([]byte{magic0, magic1, 1, 0, 0, 0, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0}), ErrMalformed},
		{"truncated envelope", valid[:len(valid)-3], ErrNotEddy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMemberMetadata(tc.in)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// userData returns the eddy user data of an encoded member metadata.
func userData(t *testing.T, b []byte) []byte {
	t.Helper()
	var env kmsg.ConsumerMemberMetadata
	if err := env.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	return env.UserData
}

func TestMemberMetadataForwardCompatible(t *testing.T) {
	valid, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	var env kmsg.ConsumerMemberMetadata
	if err := env.ReadFrom(valid); err != nil {
		t.Fatal(err)
	}
	// A later version appends fields that this version does not know.
	env.UserData = append(bytes.Clone(env.UserData), 0x01, 0x02, 0x03)
	env.UserData[2] = MemberMetadataVersion + 1
	got, err := DecodeMemberMetadata(env.AppendTo(nil))
	if err != nil {
		t.Fatalf("a newer version with appended fields: %v", err)
	}
	want := fullMetadata()
	want.Topics = []string{"a", "app-repartition", "b"}
	want.Version = MemberMetadataVersion + 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// kgo's Rack option re-encodes the consumer envelope of a balancer that
// left Rack unset (joinGroupProtocols in kgo's consumer_group.go); eddy's
// user data must survive it.
func TestMemberMetadataSurvivesKgoRackInjection(t *testing.T) {
	m := fullMetadata()
	m.Rack = ""
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var env kmsg.ConsumerMemberMetadata
	if err := env.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	rack := "rack-7"
	env.Rack = &rack
	got, err := DecodeMemberMetadata(env.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Rack != rack || got.ProcessID != m.ProcessID || !reflect.DeepEqual(got.ActiveTasks, m.ActiveTasks) {
		t.Fatalf("after rack injection: %+v", got)
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want Assignment
	}{
		{"empty", Assignment{}, Assignment{Version: AssignmentVersion}},
		{
			"full",
			Assignment{
				ActiveTasks:    []processor.TaskID{tid(1, 2), tid(0, 2), tid(1, 2)},
				StandbyTasks:   []processor.TaskID{tid(0, 1)},
				Partitions:     map[string][]int32{"b": {2}, "a": {2, 2}, "c": {}},
				ProbeRebalance: true,
			},
			Assignment{
				Version:        AssignmentVersion,
				ActiveTasks:    []processor.TaskID{tid(0, 2), tid(1, 2)},
				StandbyTasks:   []processor.TaskID{tid(0, 1)},
				Partitions:     map[string][]int32{"a": {2}, "b": {2}},
				ProbeRebalance: true,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeAssignment(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeAssignmentRejects(t *testing.T) {
	plain := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "a", Partitions: []int32{1}}}}
	withUserData := func(ud []byte) []byte {
		a := plain
		a.UserData = ud
		return a.AppendTo(nil)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"garbage", []byte{1, 2, 3}, ErrNotEddy},
		{"plain consumer assignment", plain.AppendTo(nil), ErrNotEddy},
		{"truncated tasks", withUserData([]byte{magic0, magic1, 1, 3, 0}), ErrMalformed},
		{"trailing bytes", withUserData([]byte{magic0, magic1, 1, 0, 0, 1, 7}), ErrMalformed},
		{"unknown flags", withUserData([]byte{magic0, magic1, 1, 0, 0, 2}), ErrMalformed},
		{"no flags", withUserData([]byte{magic0, magic1, 1, 0, 0}), ErrMalformed},
		{"negative partition", func() []byte {
			a := plain
			a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "a", Partitions: []int32{-4}}}
			a.UserData = []byte{magic0, magic1, 1, 0, 0, 0}
			return a.AppendTo(nil)
		}(), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeAssignment(tc.in)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A newer version may append fields and define more flags.
	a, err := DecodeAssignment(withUserData([]byte{magic0, magic1, AssignmentVersion + 1, 0, 0, 7, 7}))
	if err != nil || !a.ProbeRebalance {
		t.Fatalf("newer version: %+v, %v", a, err)
	}
}

// FuzzDecodeMemberMetadata checks that decoding never panics, and that what
// decodes re-encodes to the same metadata (the decoded form is normalized).
func FuzzDecodeMemberMetadata(f *testing.F) {
	for _, m := range []MemberMetadata{{}, fullMetadata(), {ProcessID: "p", Generation: 3, ActiveTasks: []processor.TaskID{tid(0, 1)}}} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a"}, map[string][]int32{"a": {1}}, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMemberMetadata(b)
		if err != nil {
			if !errors.Is(err, ErrNotEddy) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error wraps neither ErrNotEddy nor ErrMalformed: %v", err)
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded metadata does not encode: %v\n%+v", err, m)
		}
		m2, err := DecodeMemberMetadata(again)
		if err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v", err)
		}
		m2.Version = m.Version // Encode writes the current version
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the metadata:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzDecodeAssignment checks that decoding never panics, and that what
// decodes re-encodes to the same assignment.
func FuzzDecodeAssignment(f *testing.F) {
	for _, a := range []Assignment{{}, {ActiveTasks: []processor.TaskID{tid(0, 1), tid(2, 9)}, StandbyTasks: []processor.TaskID{tid(1, 1)}, Partitions: map[string][]int32{"a": {1}, "z": {9}}, ProbeRebalance: true}} {
		b, err := a.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAssignment(b)
		if err != nil {
			if !errors.Is(err, ErrNotEddy) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error wraps neither ErrNotEddy nor ErrMalformed: %v", err)
			}
			return
		}
		again, err := a.Encode()
		if err != nil {
			t.Fatalf("decoded assignment does not encode: %v\n%+v", err, a)
		}
		a2, err := DecodeAssignment(again)
		if err != nil {
			t.Fatalf("re-encoded assignment does not decode: %v", err)
		}
		a2.Version = a.Version
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip changed the assignment:\n%+v\n%+v", a, a2)
		}
	})
}
