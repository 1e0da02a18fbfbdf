package state_test

import (
	"testing"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/statetest"
)

func TestInMemorySupplier(t *testing.T) {
	sup := state.InMemory()
	if sup.Name() != "memory" || sup.Persistent() {
		t.Errorf("InMemory() is %q, persistent %v; want \"memory\", not persistent", sup.Name(), sup.Persistent())
	}
	statetest.RunSupplierTests(t, sup)
}

func TestStoreKindString(t *testing.T) {
	if got := state.KindKeyValue.String(); got != "key-value" {
		t.Errorf("KindKeyValue.String() = %q", got)
	}
	if got := state.StoreKind(0).String(); got != "StoreKind(0)" {
		t.Errorf("StoreKind(0).String() = %q", got)
	}
}
