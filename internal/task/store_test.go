package task_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

func rawKeys(t *testing.T, r interface {
	Range(start, end []byte) (state.Iterator, error)
}) []string {
	t.Helper()
	it, err := r.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStoreDeleteRangeIsNotLogged: a store's range delete hides the range
// at once, reaches the backend at CommitStores, is dropped by AbortStores,
// and sends nothing to the changelog, nor do the writes it covered.
func TestStoreDeleteRangeIsNotLogged(t *testing.T) {
	var raw state.RawStore
	spec := &task.Spec{
		Stores: []task.StoreSpec{{
			Name: "windows", ChangelogTopic: "app-windows-changelog",
			Typed: func(r state.RawStore) any { raw = r; return r },
		}},
		Build: func(*task.Task) error { return nil },
	}
	backend := state.NewMemoryBackend()
	defer backend.Close()
	var logged []string
	tk, err := task.New(task.Config{
		ID: processor.TaskID{Partition: 3}, ApplicationID: "app", Spec: spec,
		Backends: map[string]state.Backend{"windows": backend},
		Output: func(r *kgo.Record) {
			if r.Value == nil {
				logged = append(logged, string(r.Key)+" deleted")
			} else {
				logged = append(logged, string(r.Key)+"="+string(r.Value))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	noOffsets := func(string) (int64, bool) { return 0, false }
	commit := func() {
		t.Helper()
		tk.FlushChangelog(time.UnixMilli(1))
		if err := tk.CommitStores(noOffsets); err != nil {
			t.Fatal(err)
		}
	}

	raw.Put([]byte("s1/a"), []byte("1"))
	raw.Put([]byte("s1/b"), []byte("2"))
	raw.Put([]byte("s2/a"), []byte("3"))
	commit()
	logged = nil

	raw.Put([]byte("s1/c"), []byte("covered")) // written, then covered
	raw.DeleteRange([]byte("s1/"), []byte("s2/"))
	raw.Put([]byte("s1/b"), []byte("after"))
	raw.Put([]byte("s3/a"), []byte("4"))
	if got, want := rawKeys(t, raw), []string{"s1/b=after", "s2/a=3", "s3/a=4"}; !slices.Equal(got, want) {
		t.Errorf("the store reads %q before the commit, want %q", got, want)
	}
	if n := tk.FlushChangelog(time.UnixMilli(2)); n != 2 {
		t.Errorf("FlushChangelog emitted %d records, want 2", n)
	}
	if want := []string{"s1/b=after", "s3/a=4"}; !slices.Equal(logged, want) {
		t.Errorf("the changelog got %q, want only the writes after the range delete, %q", logged, want)
	}
	if err := tk.CommitStores(noOffsets); err != nil {
		t.Fatal(err)
	}
	if got, want := rawKeys(t, backend), []string{"s1/b=after", "s2/a=3", "s3/a=4"}; !slices.Equal(got, want) {
		t.Errorf("the backend holds %q after the commit, want %q", got, want)
	}

	// Aborted, a range delete leaves the store as committed.
	raw.DeleteRange(nil, nil)
	if got := rawKeys(t, raw); got != nil {
		t.Errorf("after DeleteRange(nil, nil) the store reads %q, want nothing", got)
	}
	tk.AbortStores()
	if got, want := rawKeys(t, raw), []string{"s1/b=after", "s2/a=3", "s3/a=4"}; !slices.Equal(got, want) {
		t.Errorf("after AbortStores the store reads %q, want %q", got, want)
	}
}
