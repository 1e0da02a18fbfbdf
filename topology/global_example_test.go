package topology_test

import (
	"fmt"
	"strings"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Orders, keyed by order id, enriched with their product's name from a
// global table of products: the key mapper reads the product id from the
// order, so the orders need no repartitioning by product. An order whose
// product the table lacks is joined with the zero value.
func ExampleLeftJoinGlobal() {
	b := topology.NewBuilder()
	products := topology.GlobalTableFrom(b, "products", serde.String(), serde.String())
	orders := topology.Source(b, "orders", serde.String(), serde.String()) // value: "<product>x<quantity>"
	topology.LeftJoinGlobal(orders, products,
		func(_, order string) string { return strings.Split(order, "x")[0] },
		func(_, order, name string) string {
			if name == "" {
				name = "unknown"
			}
			return name + " x" + strings.Split(order, "x")[1]
		}).To("enriched")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	p := eddytest.NewInputTopic(d, "products", serde.String(), serde.String())
	o := eddytest.NewInputTopic(d, "orders", serde.String(), serde.String())
	p.Pipe("p1", "kettle")
	p.Pipe("p2", "teapot")
	o.Pipe("o1", "p2x1")
	o.Pipe("o2", "p3x4")
	d.PipeRaw("products", []byte("p2"), nil, d.Now()) // p2 is withdrawn
	o.Pipe("o3", "p2x2")
	o.Pipe("o4", "p1x3")
	out, _ := eddytest.NewOutputTopic(d, "enriched", serde.String(), serde.String()).ReadKeyValues()
	fmt.Println(out)
	// Output: [{o1 teapot x1} {o2 unknown x4} {o3 unknown x2} {o4 kettle x3}]
}
