package pebblestore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closing every store leaves no goroutine of Pebble's
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
