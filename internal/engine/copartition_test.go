package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// TestJoinCopartitioningCheckedAtStart: the two inputs of a stream-stream
// join must have equal partition counts; setupTopics fails with a
// CopartitionError naming the topics and their counts, whether the inputs
// are the application's topics or a repartition topic the join writes.
func TestJoinCopartitioningCheckedAtStart(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(2, "left"), kfake.SeedTopics(3, "right"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	w, err := window.JoinWindowsOfTimeDifferenceWithNoGrace(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	joiner := func(_ string, l, r string) string { return l + r }
	for _, tc := range []struct {
		name  string
		build func(b *topology.Builder)
		want  map[string]int
	}{
		{
			name: "input topics",
			build: func(b *topology.Builder) {
				l := topology.Source(b, "left", serde.String(), serde.String())
				r := topology.Source(b, "right", serde.String(), serde.String())
				topology.Join(l, r, joiner, w).WithSerdes(nil, serde.String()).To("right")
			},
			want: map[string]int{"left": 2, "right": 3},
		},
		{
			name: "a repartition topic against an input topic",
			build: func(b *topology.Builder) {
				l := topology.SelectKey(topology.Source(b, "left", serde.String(), serde.String()), func(k, v string) string { return v })
				r := topology.Source(b, "right", serde.String(), serde.String())
				topology.Join(l, r, joiner, w, topology.Named("j"), topology.WithPartitions(4)).WithSerdes(nil, serde.String()).To("right")
			},
			want: map[string]int{"app-j-left-repartition": 4, "right": 3},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			_, err = setupTopics(context.Background(), adm, top, "app", 1, "")
			var ce *CopartitionError
			if !errors.As(err, &ce) {
				t.Fatalf("setupTopics: %v, want a CopartitionError", err)
			}
			if len(ce.Partitions) != len(tc.want) {
				t.Fatalf("error lists %v, want %v (%v)", ce.Partitions, tc.want, err)
			}
			for topic, n := range tc.want {
				if ce.Partitions[topic] != n {
					t.Errorf("error lists %v, want %v (%v)", ce.Partitions, tc.want, err)
				}
			}
		})
	}
}
