package statetest

import (
	"path/filepath"
	"testing"

	"github.com/eddystream/eddy/state"
)

// RunSupplierTests checks a state.BackendSupplier against what the engine
// relies on: it names itself, its backends keep their data across a Close
// and an Open of the same directory exactly when it says it is persistent,
// Destroy empties a directory (and accepts one that does not exist), and
// the stores of two directories are independent. Run RunBackendTests on its
// backends too.
func RunSupplierTests(t *testing.T, sup state.BackendSupplier) {
	t.Helper()
	if sup.Name() == "" {
		t.Error("Name is empty; name the backend for logs and metrics")
	}
	open := func(dir string) state.Backend {
		t.Helper()
		b, err := sup.Open(dir, nil)
		if err != nil {
			t.Fatalf("Open(%s): %v", dir, err)
		}
		return b
	}
	closeB := func(b state.Backend) {
		t.Helper()
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	root := t.TempDir()
	if err := sup.Destroy(filepath.Join(root, "never-opened")); err != nil {
		t.Errorf("Destroy of a directory that does not exist: %v", err)
	}

	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	sa, sb := open(a), open(b)
	apply(t, sa, put("k", "a"))
	apply(t, sb, put("k", "b"), put("only-b", "1"))
	wantRange(t, sa, nil, nil, []kv{{"k", "a"}})
	closeB(sa)
	closeB(sb)

	sa = open(a)
	if sup.Persistent() {
		wantRange(t, sa, nil, nil, []kv{{"k", "a"}})
	} else {
		wantRange(t, sa, nil, nil, nil)
	}
	closeB(sa)

	if err := sup.Destroy(a); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	sa = open(a)
	wantRange(t, sa, nil, nil, nil)
	closeB(sa)
	sb = open(b)
	if sup.Persistent() {
		wantRange(t, sb, nil, nil, []kv{{"k", "b"}, {"only-b", "1"}})
	}
	closeB(sb)
}
