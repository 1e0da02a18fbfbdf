// Command clickstream counts page views in time windows with eddy: final
// views per page and minute (tumbling windows, one result per window, once
// it has closed), views per page over the last five minutes every minute
// (hopping windows, every update), and views per user session (session
// windows with a two-minute inactivity gap, merged as out-of-order views
// arrive).
//
// With no flags it starts an in-process Kafka broker (franz-go's kfake),
// writes a bounded sample of page views with event times over ten minutes,
// runs the topology until every final result is out, prints them, and
// exits. With -brokers it runs against a real cluster until interrupted,
// reading -input (page views keyed by page, the user as the value) and
// writing the three outputs, which must exist.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/examples/internal/appflags"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// Topics is where the topology reads and writes.
type Topics struct {
	Views    string // page -> user, with the view's event time
	PerMin   string // Windowed[page] -> final views in the minute
	Hopping  string // Windowed[page] -> views in five minutes, every update
	Sessions string // Windowed[user] -> views in the session; null when merged away
}

// Windows of the topology.
var (
	perMinute = must(window.TimeWindowsOfSizeAndGrace(time.Minute, 10*time.Second))
	fiveMin   = must(must(window.TimeWindowsOfSizeWithNoGrace(5 * time.Minute)).AdvanceBy(time.Minute))
	// Views reach the session count through a repartition topic (by
	// user), interleaved from the pages' partitions, so their event times
	// go back and forth by as much as the partitions are apart: the grace
	// period keeps a late view in its session instead of dropping it.
	sessions = must(window.SessionWindowsOfInactivityGapAndGrace(2*time.Minute, 15*time.Minute))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Topology builds the three windowed counts.
func Topology(t Topics) (*topology.Topology, error) {
	b := topology.NewBuilder()
	views := topology.Source(b, t.Views, serde.String(), serde.String(), topology.Named("views"))
	byPage := views.GroupByKey(topology.Named("by-page"))
	topology.WindowedBy(byPage, perMinute).EmitOnWindowClose().
		Count(topology.StoreName("views-per-minute"), topology.Named("count-per-minute")).
		ToStream(topology.Named("final-per-minute")).To(t.PerMin, topology.Named("per-minute-out"))
	topology.WindowedBy(byPage, fiveMin).
		Count(topology.StoreName("views-five-minutes"), topology.Named("count-five-minutes")).
		ToStream(topology.Named("five-minutes-updates")).To(t.Hopping, topology.Named("five-minutes-out"))
	byUser := topology.GroupBy(views, func(_, user string) string { return user }, serde.String(), topology.Named("by-user"))
	topology.SessionWindowedBy(byUser, sessions).
		Count(topology.StoreName("user-sessions"), topology.Named("count-sessions")).
		ToStream(topology.Named("session-updates")).To(t.Sessions, topology.Named("sessions-out"))
	return b.Build()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clickstream:", err)
		os.Exit(1)
	}
}

func run() error {
	f := appflags.Register(flag.CommandLine, "clickstream", "Kafka bootstrap brokers, comma separated; empty starts an in-process broker with a sample of page views")
	var t Topics
	flag.StringVar(&t.Views, "input", "page-views", "input topic: page views keyed by page, the user as the value")
	flag.StringVar(&t.PerMin, "per-minute", "page-views-per-minute", "output: final views per page and minute")
	flag.StringVar(&t.Hopping, "five-minutes", "page-views-five-minutes", "output: views per page over five minutes, every minute, every update")
	flag.StringVar(&t.Sessions, "sessions", "user-sessions", "output: views per user session")
	flag.Parse()
	log := f.Logger()
	top, err := Topology(t)
	if err != nil {
		return err
	}
	opts, err := f.Options(log)
	if err != nil {
		return err
	}
	if f.Brokers == "" {
		if f.Secured() {
			return errors.New("-tls and -sasl-mechanism need -brokers: the in-process broker takes neither")
		}
		return runEmbedded(top, t, f.StateDir, f.CommitInterval, opts, log)
	}
	app, err := eddy.New(top, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx)
}

// view is one page view of the sample.
type view struct {
	page, user string
	at         time.Duration // after the sample's start
}

// sampleStart is the event time the sample starts at.
var sampleStart = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// sample is ten minutes of views by three users, some out of order.
func sample() []view {
	var vs []view
	pages := []string{"/home", "/cart", "/docs"}
	for i := 0; i < 60; i++ {
		user := []string{"ana", "bo", "cy"}[i%3]
		at := time.Duration(i) * 10 * time.Second
		if user == "cy" && at > 3*time.Minute && at < 7*time.Minute {
			continue // cy pauses: two sessions
		}
		vs = append(vs, view{page: pages[(i/2)%3], user: user, at: at})
	}
	// Out of order, within the grace periods: a view of bo's that arrives
	// 20 s late.
	vs = append(vs, view{page: "/cart", user: "bo", at: 9*time.Minute + 30*time.Second})
	vs[len(vs)-1], vs[len(vs)-2] = vs[len(vs)-2], vs[len(vs)-1]
	return vs
}

func runEmbedded(top *topology.Topology, t Topics, stateDir string, commitInterval time.Duration, opts []eddy.Option, log *slog.Logger) error {
	start := time.Now()
	const partitions = 3
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, t.Views, t.PerMin, t.Hopping, t.Sessions))
	if err != nil {
		return fmt.Errorf("start the in-process broker: %w", err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "eddy-clickstream-"); err != nil {
			return err
		}
		defer os.RemoveAll(stateDir)
	}
	if commitInterval == 0 {
		opts = append(opts, eddy.CommitInterval(100*time.Millisecond))
	}
	opts = append(opts, eddy.Brokers(addrs...), eddy.StateDir(filepath.Clean(stateDir)),
		eddy.KafkaOptions(kgo.RebalanceTimeout(2*time.Second)))

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vs := sample()
	want := expected(vs)
	var recs []*kgo.Record
	for _, v := range vs {
		ts := sampleStart.Add(v.at)
		recs = append(recs, &kgo.Record{Topic: t.Views, Partition: partitionOf(v.page, partitions), Key: []byte(v.page), Value: []byte(v.user), Timestamp: ts})
	}
	// The windows of a partition close as its stream time passes them:
	// one last view per partition, an hour on, closes them all.
	for p := int32(0); p < partitions; p++ {
		recs = append(recs, &kgo.Record{Topic: t.Views, Partition: p, Key: []byte("/end"), Value: []byte("-"), Timestamp: sampleStart.Add(time.Hour)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce the sample: %w", err)
	}
	log.Info("sample written", "views", len(vs), "broker", addrs[0])

	app, err := eddy.New(top, opts...)
	if err != nil {
		return err
	}
	runCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(runCtx) }()

	res, err := readResults(ctx, addrs, t, want, runErr)
	stopApp()
	if err != nil {
		<-runErr // stopped before the state directory goes
		return err
	}
	if err := <-runErr; err != nil {
		return err
	}
	res.print()
	fmt.Printf("%d views, %d final per-minute results, %d sessions in %.1fs\n", len(vs), len(res.perMinute), len(res.sessions), time.Since(start).Seconds())
	return nil
}

// expected computes the final results the sample must give: the views
// per page and minute, and the sessions per user (views no more than the
// inactivity gap apart).
func expected(vs []view) results {
	want := results{perMinute: map[string]int64{}, sessions: map[string]int64{}}
	byUser := map[string][]time.Time{}
	for _, v := range vs {
		ts := sampleStart.Add(v.at)
		want.perMinute[fmt.Sprintf("%s@%s", v.page, ts.Truncate(time.Minute).Format("15:04"))]++
		byUser[v.user] = append(byUser[v.user], ts)
	}
	for user, times := range byUser {
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		start, n := times[0], int64(0)
		for i, ts := range times {
			n++
			if i == len(times)-1 || times[i+1].Sub(ts) > sessions.InactivityGap() {
				want.sessions[fmt.Sprintf("%s@%s-%s", user, start.Format("15:04:05"), ts.Format("15:04:05"))] = n
				if i < len(times)-1 {
					start, n = times[i+1], 0
				}
			}
		}
	}
	return want
}

// partitionOf spreads pages over the partitions as the sample wants them:
// the key's partition is the page's, whatever the producer's partitioner.
func partitionOf(page string, partitions int32) int32 {
	var h int32
	for _, c := range page {
		h = (h*31 + c) % partitions
	}
	return h
}

// results is what the embedded run read back.
type results struct {
	perMinute map[string]int64 // "page@15:04" -> final views
	hopping   map[string]int64 // "page@15:04-15:09" -> last update
	sessions  map[string]int64 // "user@15:04:05-15:04:05" -> views (live sessions only)
}

func (r results) print() {
	section := func(title string, m map[string]int64) {
		fmt.Println(title)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("  %-28s %d\n", k, m[k])
		}
	}
	section("final views per page and minute", r.perMinute)
	section("views per page over five minutes (last update)", r.hopping)
	section("views per user session", r.sessions)
}

// readResults reads the three outputs from the start, read_committed,
// until every final per-minute result and every session of the sample is
// out (the hopping windows, updated with the per-minute counts, are then
// complete too).
func readResults(ctx context.Context, addrs []string, t Topics, want results, runErr chan error) (results, error) {
	res := results{perMinute: map[string]int64{}, hopping: map[string]int64{}, sessions: map[string]int64{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(t.PerMin, t.Hopping, t.Sessions),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	minuteKeys := must(window.TimeWindowedSerde(serde.String(), perMinute.Size()))
	hopKeys := must(window.TimeWindowedSerde(serde.String(), fiveMin.Size()))
	sessionKeys := window.SessionWindowedSerde(serde.String())
	counts := serde.Int64()
	clock := func(ms int64, layout string) string { return time.UnixMilli(ms).UTC().Format(layout) }
	done := func() bool {
		return maps.Equal(res.perMinute, want.perMinute) && maps.Equal(res.sessions, want.sessions)
	}
	for !done() {
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		cancel()
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("the application stopped before every result was out")
			}
			return res, err
		default:
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("not every final result was out in time:\n got %v %v\nwant %v %v", res.perMinute, res.sessions, want.perMinute, want.sessions)
		}
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case t.PerMin:
				k, err := minuteKeys.Deserialize(r.Topic, r.Key)
				n, err2 := counts.Deserialize(r.Topic, r.Value)
				if ferr = errors.Join(err, err2); ferr == nil && k.Key != "/end" {
					res.perMinute[fmt.Sprintf("%s@%s", k.Key, clock(k.Window.StartMs(), "15:04"))] = n
				}
			case t.Hopping:
				k, err := hopKeys.Deserialize(r.Topic, r.Key)
				n, err2 := counts.Deserialize(r.Topic, r.Value)
				if ferr = errors.Join(err, err2); ferr == nil && k.Key != "/end" {
					res.hopping[fmt.Sprintf("%s@%s-%s", k.Key, clock(k.Window.StartMs(), "15:04"), clock(k.Window.EndMs(), "15:04"))] = n
				}
			case t.Sessions:
				k, err := sessionKeys.Deserialize(r.Topic, r.Key)
				if ferr = err; ferr != nil || k.Key == "-" {
					return
				}
				name := fmt.Sprintf("%s@%s-%s", k.Key, clock(k.Window.StartMs(), "15:04:05"), clock(k.Window.EndMs(), "15:04:05"))
				if r.Value == nil { // merged into a larger session
					delete(res.sessions, name)
					return
				}
				n, err := counts.Deserialize(r.Topic, r.Value)
				if ferr = err; ferr == nil {
					res.sessions[name] = n
				}
			}
		})
		if ferr != nil {
			return res, ferr
		}
	}
	return res, nil
}
