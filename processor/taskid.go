package processor

import (
	"fmt"
	"strconv"
	"strings"
)

// TaskID names a task: one sub-topology applied to one partition number of
// its (co-partitioned) input topics. It is the unit of parallelism and of
// state ownership. Its string form, "<subtopology>_<partition>" (as in Kafka
// Streams), names the task's state directory.
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String returns "<subtopology>_<partition>".
func (id TaskID) String() string {
	return strconv.Itoa(id.Subtopology) + "_" + strconv.FormatInt(int64(id.Partition), 10)
}

// Less orders task ids by sub-topology, then partition.
func (id TaskID) Less(o TaskID) bool {
	if id.Subtopology != o.Subtopology {
		return id.Subtopology < o.Subtopology
	}
	return id.Partition < o.Partition
}

// Compare orders task ids as Less does: -1 if id sorts before o, 1 if
// after, 0 if equal. It suits slices.SortFunc.
func (id TaskID) Compare(o TaskID) int {
	switch {
	case id.Less(o):
		return -1
	case o.Less(id):
		return 1
	}
	return 0
}

// ParseTaskID parses the form produced by TaskID.String.
func ParseTaskID(s string) (TaskID, error) {
	sub, part, ok := strings.Cut(s, "_")
	if !ok {
		return TaskID{}, fmt.Errorf("processor: task id %q: want <subtopology>_<partition>", s)
	}
	st, err := strconv.Atoi(sub)
	if err != nil || st < 0 {
		return TaskID{}, fmt.Errorf("processor: task id %q: bad sub-topology", s)
	}
	p, err := strconv.ParseInt(part, 10, 32)
	if err != nil || p < 0 {
		return TaskID{}, fmt.Errorf("processor: task id %q: bad partition", s)
	}
	return TaskID{Subtopology: st, Partition: int32(p)}, nil
}
