package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Controller owns the instances of the application under test; [KillLoop]
// drives it. Instances are numbered 0 to Instances()-1. KillLoop calls the
// methods from its own goroutine only, one at a time.
type Controller interface {
	// Instances returns how many instances there are.
	Instances() int
	// Kill kills instance i with SIGKILL, so that it cannot flush, commit
	// or leave its group, and returns once the process has exited.
	Kill(i int) error
	// Restart starts instance i again after Kill, with the same arguments
	// and state directory. A controller that tests recovery from an empty
	// state wipes the state directory first.
	Restart(i int) error
}

// KillLoop kills and restarts instances until ctx ends, and returns the
// number of kills. Before each kill it waits a random pause between 3/4 and
// 5/4 of every, so that kills do not fall into step with the application's
// commit interval; then it picks an instance uniformly with rng, kills it
// and restarts it at once.
//
// It returns with a nil error when ctx ends, and early with the error of a
// failed Kill or Restart. A kill whose restart fails is counted.
func KillLoop(ctx context.Context, procs Controller, every time.Duration, rng *rand.Rand) (int, error) {
	if every <= 0 {
		return 0, fmt.Errorf("chaos: KillLoop needs a positive interval, got %v", every)
	}
	if rng == nil {
		return 0, errors.New("chaos: KillLoop needs a random source")
	}
	n := procs.Instances()
	if n <= 0 {
		return 0, fmt.Errorf("chaos: KillLoop needs at least one instance, the controller has %d", n)
	}
	kills := 0
	for {
		pause := every*3/4 + time.Duration(rng.Int64N(int64(every/2)+1))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return kills, nil
		case <-t.C:
		}
		i := rng.IntN(n)
		if err := procs.Kill(i); err != nil {
			return kills, fmt.Errorf("chaos: kill instance %d: %w", i, err)
		}
		kills++
		if err := procs.Restart(i); err != nil {
			return kills, fmt.Errorf("chaos: restart instance %d: %w", i, err)
		}
	}
}
