package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every closed server leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
