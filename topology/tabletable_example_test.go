package topology_test

import (
	"fmt"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Each user's city with their plan, kept up to date as either table
// changes: a user without a plan is joined with the zero value, and so is
// one whose plan is deleted (a tombstone).
func ExampleLeftJoinTables() {
	b := topology.NewBuilder()
	cities := topology.TableFrom(b, "user-cities", serde.String(), serde.String())
	plans := topology.TableFrom(b, "user-plans", serde.String(), serde.String())
	topology.LeftJoinTables(cities, plans, func(_, city, plan string) string {
		if plan == "" {
			plan = "none"
		}
		return city + "/" + plan
	}, serde.String(), topology.StoreName("user-profiles")).
		ToStream().
		To("profiles")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	c := eddytest.NewInputTopic(d, "user-cities", serde.String(), serde.String())
	p := eddytest.NewInputTopic(d, "user-plans", serde.String(), serde.String())
	c.Pipe("ann", "paris")
	p.Pipe("ann", "gold")
	c.Pipe("bo", "rome")
	p.Pipe("bo", "free")
	d.PipeRaw("user-plans", []byte("ann"), nil, d.Now())
	out, _ := eddytest.NewOutputTopic(d, "profiles", serde.String(), serde.String()).ReadKeyValues()
	fmt.Println(out)
	// Output: [{ann paris/none} {ann paris/gold} {bo rome/none} {bo rome/free} {ann paris/none}]
}
