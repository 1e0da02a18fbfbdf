package processor

import "testing"

func TestTaskIDStringAndParse(t *testing.T) {
	id := TaskID{Subtopology: 2, Partition: 11}
	if id.String() != "2_11" {
		t.Fatalf("String = %q", id.String())
	}
	got, err := ParseTaskID("2_11")
	if err != nil || got != id {
		t.Fatalf("ParseTaskID = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2", "_1", "1_", "a_1", "1_b", "-1_0", "0_-1", "0_99999999999"} {
		if _, err := ParseTaskID(bad); err == nil {
			t.Errorf("ParseTaskID(%q) accepted", bad)
		}
	}
	if !(TaskID{0, 5}).Less(TaskID{1, 0}) || !(TaskID{1, 0}).Less(TaskID{1, 1}) || (TaskID{1, 1}).Less(TaskID{1, 1}) {
		t.Error("Less does not order by sub-topology, then partition")
	}
}

func FuzzParseTaskID(f *testing.F) {
	for _, s := range []string{"0_0", "12_7", "x", "1__2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseTaskID(s)
		if err != nil {
			return
		}
		again, err := ParseTaskID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q parsed to %v, which does not round-trip", s, id)
		}
	})
}

func TestTaskIDCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b TaskID
		want int
	}{
		{TaskID{0, 5}, TaskID{1, 0}, -1},
		{TaskID{1, 1}, TaskID{1, 0}, 1},
		{TaskID{2, 3}, TaskID{2, 3}, 0},
	} {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
