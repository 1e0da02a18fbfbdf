// Package chaos checks a stream-processing application's delivery
// guarantee under crashes. It has three parts, used together by the
// end-to-end suite (e2e/chaos_test.go) and by the long-running command
// e2e/cmd/chaos:
//
//  1. A data-set driver. [Produce] and [DataSet.ProduceMore] write int64
//     values (8 bytes big-endian) under string keys to an input topic and
//     remember, per key, the exact aggregate ([Stats]) an application must
//     end with. Every value is unique (values are sequence numbers 0, 1,
//     2, ...), so each input record can be recognised wherever it shows up.
//  2. A chaos loop. [KillLoop] repeatedly picks one instance of the
//     application, kills it with SIGKILL and restarts it, through a
//     [Controller] that the caller implements (the caller owns the
//     processes, and may wipe an instance's state before restarting it).
//  3. A verifier. [Verify] reads the application's passthrough topic (every
//     input record, copied) and its stats topic (one aggregate per update)
//     with read_committed isolation, and returns a [Report]: inputs that
//     never came out, inputs that came out more than once, records that are
//     no input at all, and keys whose last aggregate is not the exact one.
//
// The application under test is expected to behave like
// examples/aggregates: it copies each input record, key and value, to the
// passthrough topic, and after each input emits the key's new [Stats] as
// JSON to the stats topic.
//
// A typical run:
//
//	ds, err := chaos.Produce(ctx, cl, "numbers", 50_000, 1_000, seed)
//	// start the instances, then, while they run:
//	err = ds.ProduceMore(ctx, cl, 50_000)
//	kills, err := chaos.KillLoop(chaosCtx, instances, 3*time.Second, rng)
//	// wait until the input is consumed and stop the instances cleanly, then:
//	report, err := chaos.Verify(ctx, brokers, ds, "numbers-passthrough", "numbers-stats")
//	fmt.Println(report)
//	if !report.NothingLost() { ... }
//
// Under at-least-once a crash makes the application process again the
// records it read since its last commit, so [Report.NothingLost] must hold
// and duplicates are expected. Under exactly-once, [Report.ExactlyOnce] must
// hold: every input exactly once in the passthrough and every last
// aggregate exact.
//
// The package does not import testing, so commands can use it. It starts
// no goroutine of its own; the clients Verify creates are closed, and their
// goroutines gone, before it returns.
package chaos
