package rebalance

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/eddystream/eddy/processor"
)

func TestNewLayoutRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		subs []Subtopology
		want string
	}{
		{"none", nil, "no sub-topologies"},
		{"negative id", []Subtopology{{ID: -1, SourceTopics: []string{"a"}}}, "out of range"},
		{"no topics", []Subtopology{{ID: 0}}, "has no source topics"},
		{"repeated id", []Subtopology{{ID: 1, SourceTopics: []string{"a"}}, {ID: 1, SourceTopics: []string{"b"}}}, "appears twice"},
		{"empty topic", []Subtopology{{ID: 0, SourceTopics: []string{""}}}, "empty source topic"},
		{"topic listed twice", []Subtopology{{ID: 0, SourceTopics: []string{"a", "a"}}}, "lists source topic \"a\" twice"},
		{"shared topic", []Subtopology{{ID: 0, SourceTopics: []string{"a"}}, {ID: 1, SourceTopics: []string{"b", "a"}}}, "source of sub-topologies 0 and 1"},
		{"empty changelog", []Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{""}}}, "empty changelog topic"},
		{"changelog listed twice", []Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"c", "c"}}}, "lists changelog topic \"c\" twice"},
		{"changelog of two", []Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"c"}}, {ID: 1, SourceTopics: []string{"b"}, ChangelogTopics: []string{"c"}}}, "changelog of sub-topologies 0 and 1"},
		{"changelog is another's source", []Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"b"}}, {ID: 1, SourceTopics: []string{"b"}}}, "changelog of sub-topology 0 and a source of sub-topology 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLayout(tc.subs)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLayoutTranslation(t *testing.T) {
	in := []Subtopology{{ID: 2, SourceTopics: []string{"d"}}, {ID: 0, SourceTopics: []string{"b", "a"}}}
	l, err := NewLayout(in)
	if err != nil {
		t.Fatal(err)
	}
	in[1].SourceTopics[0] = "mutated" // the layout keeps its own copy
	if got, want := l.SourceTopics(), []string{"a", "b", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SourceTopics = %v, want %v", got, want)
	}
	if got, want := l.Subtopologies(), []Subtopology{{ID: 0, SourceTopics: []string{"a", "b"}}, {ID: 2, SourceTopics: []string{"d"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Subtopologies = %v, want %v", got, want)
	}

	if task, ok := l.TaskOf("b", 5); !ok || task != tid(0, 5) {
		t.Errorf("TaskOf(b, 5) = %v, %v", task, ok)
	}
	for _, tc := range []struct {
		topic string
		p     int32
	}{{"zzz", 1}, {"a", -1}} {
		if _, ok := l.TaskOf(tc.topic, tc.p); ok {
			t.Errorf("TaskOf(%s, %d) found a task", tc.topic, tc.p)
		}
	}

	got := l.TasksOf(map[string][]int32{"a": {3, 1}, "b": {1}, "d": {0}, "other": {7}})
	if want := []processor.TaskID{tid(0, 1), tid(0, 3), tid(2, 0)}; !reflect.DeepEqual(got, want) {
		t.Errorf("TasksOf = %v, want %v", got, want)
	}
	parts := l.Partitions([]processor.TaskID{tid(0, 3), tid(2, 0), tid(0, 1), tid(9, 9)})
	if want := map[string][]int32{"a": {1, 3}, "b": {1, 3}, "d": {0}}; !reflect.DeepEqual(parts, want) {
		t.Errorf("Partitions = %v, want %v", parts, want)
	}

	tasks, err := l.Tasks(map[string]int32{"a": 2, "b": 2, "d": 1, "unrelated": 50})
	if err != nil {
		t.Fatal(err)
	}
	if want := []processor.TaskID{tid(0, 0), tid(0, 1), tid(2, 0)}; !reflect.DeepEqual(tasks, want) {
		t.Errorf("Tasks = %v, want %v", tasks, want)
	}
}

func TestLayoutTasksCopartitionError(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}}, {ID: 1, SourceTopics: []string{"b", "c", "d"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Tasks(map[string]int32{"a": 3, "b": 4, "c": 6})
	var ce *CopartitionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CopartitionError", err)
	}
	want := &CopartitionError{Subtopology: 1, PartitionCounts: map[string]int32{"b": 4, "c": 6}, MissingTopics: []string{"d"}}
	if !reflect.DeepEqual(ce, want) {
		t.Fatalf("got %+v, want %+v", ce, want)
	}
	for _, s := range []string{"sub-topology 1", "b=4 c=6", "missing=d"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not mention %q", err, s)
		}
	}
}

func TestLayoutChangelogs(t *testing.T) {
	l, err := NewLayout([]Subtopology{
		{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"s0-z", "s0-y"}},
		{ID: 1, SourceTopics: []string{"b"}},
		// A source table whose input is its changelog.
		{ID: 2, SourceTopics: []string{"table"}, ChangelogTopics: []string{"table"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.ChangelogTopics(), []string{"s0-y", "s0-z", "table"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ChangelogTopics = %v, want %v", got, want)
	}
	if !l.Stateful(tid(0, 3)) || l.Stateful(tid(1, 0)) || !l.Stateful(tid(2, 0)) || l.Stateful(tid(7, 0)) {
		t.Error("Stateful is wrong")
	}
	parts := l.ChangelogPartitions([]processor.TaskID{tid(0, 3), tid(1, 0), tid(0, 1), tid(2, 0)})
	if want := map[string][]int32{"s0-y": {1, 3}, "s0-z": {1, 3}, "table": {0}}; !reflect.DeepEqual(parts, want) {
		t.Errorf("ChangelogPartitions = %v, want %v", parts, want)
	}
	offsets := map[string]map[int32]int64{"s0-y": {3: 100, 1: 7}, "s0-z": {3: 20}}
	if sum, ok := l.TaskOffsetSum(tid(0, 3), offsets); !ok || sum != 120 {
		t.Errorf("TaskOffsetSum(0_3) = %d, %v, want 120", sum, ok)
	}
	for _, task := range []processor.TaskID{tid(0, 1), tid(1, 0), tid(2, 0)} { // missing, stateless, missing
		if sum, ok := l.TaskOffsetSum(task, offsets); ok {
			t.Errorf("TaskOffsetSum(%s) = %d, ok", task, sum)
		}
	}
}
