package changelog_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/changelog"
)

func ExamplePlanRestore() {
	// A store checkpointed at 600, its changelog holding offsets 0 to 999.
	plan, _ := changelog.PlanRestore(600, 0, 1000)
	fmt.Printf("%+v\n", plan)

	// No checkpoint: wipe, then read everything.
	plan, _ = changelog.PlanRestore(changelog.NoCheckpoint, 0, 1000)
	fmt.Printf("%+v\n", plan)

	// The changelog is shorter than the store: start again from nothing.
	_, err := changelog.PlanRestore(1200, 0, 1000)
	fmt.Println(errors.Is(err, changelog.ErrCheckpointAhead))
	// Output:
	// {From:600 End:1000 Full:false}
	// {From:0 End:1000 Full:true}
	// true
}

func ExampleWriteCheckpoint() {
	dir, err := os.MkdirTemp("", "task-1_3")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, ".checkpoint")

	if _, err := changelog.ReadCheckpoint(path); errors.Is(err, fs.ErrNotExist) {
		fmt.Println("no checkpoint yet")
	}
	cp := changelog.Checkpoint{
		{Topic: "shop-counts-changelog", Partition: 3}: 1042,
		{Topic: "shop-totals-changelog", Partition: 3}: 17,
	}
	if err := changelog.WriteCheckpoint(path, cp); err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))

	read, err := changelog.ReadCheckpoint(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(read[changelog.TopicPartition{Topic: "shop-counts-changelog", Partition: 3}])
	// Output:
	// no checkpoint yet
	// eddy-checkpoint v1
	// entries 2
	// shop-counts-changelog 3 1042
	// shop-totals-changelog 3 17
	// crc32c 8c2f7c15
	// 1042
}

// mapStore is a RestoreTarget over a map.
type mapStore map[string]string

func (m mapStore) Wipe() error {
	clear(m)
	return nil
}

func (m mapStore) ApplyBatch(records []*kgo.Record) error {
	for _, r := range records {
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = string(r.Value)
		}
	}
	return nil
}

func ExampleRestorer_Restore() {
	// An in-process broker with a changelog of three records.
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, "shop-counts-changelog"))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("shop-counts-changelog"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	err = cl.ProduceSync(context.Background(),
		&kgo.Record{Key: []byte("apples"), Value: []byte("3")},
		&kgo.Record{Key: []byte("pears"), Value: []byte("1")},
		&kgo.Record{Key: []byte("apples")}, // a tombstone
	).FirstErr()
	if err != nil {
		log.Fatal(err)
	}

	r, err := changelog.NewRestorer(cl, changelog.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	store := mapStore{}
	tp := changelog.TopicPartition{Topic: "shop-counts-changelog", Partition: 0}
	res, err := r.Restore(context.Background(), tp, changelog.NoCheckpoint, store)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("restored %d records of %s; checkpoint it at offset %d\n", res.Records, res.Partition, res.EndOffset)
	fmt.Println(store)
	// Output:
	// restored 3 records of shop-counts-changelog-0; checkpoint it at offset 3
	// map[pears:1]
}
