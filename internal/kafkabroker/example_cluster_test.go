package kafkabroker_test

import (
	"context"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/kafkabroker"
)

// A fault test runs a cluster of its own, finds the node that coordinates
// a consumer group, kills it, and later brings it back on the same
// address. Not run by go test: it would start three broker JVMs.
func ExampleStartCluster() {
	ctx := context.Background()
	c, err := kafkabroker.StartCluster(ctx, 3)
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // carries the tail of a node's log
		return
	}
	defer c.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer cl.Close()
	coordinators := kadm.NewClient(cl).FindGroupCoordinators(ctx, "my-group")
	coordinator, ok := coordinators["my-group"]
	if !ok || coordinator.Err != nil {
		fmt.Fprintln(os.Stderr, "no coordinator:", coordinator.Err)
		return
	}
	if err := c.Kill(coordinator.NodeID); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// ... check that the group's members carry on with two nodes ...
	if err := c.Restart(ctx, coordinator.NodeID); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
