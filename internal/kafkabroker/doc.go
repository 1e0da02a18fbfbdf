// Package kafkabroker provides a real Apache Kafka broker for end-to-end tests,
// benchmarks and manual runs: one node in KRaft mode that is both broker and
// controller, tuned so that consumer groups and transactions work on a single
// node and start fast.
//
// [Start] takes the first source that is available, in this order:
//
//  1. The KAFKA_BROKERS environment variable: a comma-separated bootstrap list of
//     a broker that someone else runs. Start checks that it answers; Close leaves
//     it alone. Source reports "env".
//  2. A Docker engine that answers within two seconds: an apache/kafka
//     container started with testcontainers-go. Source reports "testcontainers".
//     If Docker answers but cannot start the container (it cannot pull the
//     image, say), Start goes on to the JVM.
//  3. A broker JVM run from the Apache Kafka jars on Maven Central. The jars are
//     fetched once with mvn into os.UserCacheDir()/eddy/kafka/<version>/libs
//     (download into a temporary directory, then rename, under a file lock so
//     that concurrent test binaries download once); later starts need only java.
//     Source reports "jvm".
//
// The broker settings that differ from Kafka's defaults are the same for the
// container and the JVM; each is documented where it is declared
// (see testSettings in properties.go). In short: replication factor 1 for the
// internal topics, few partitions for __consumer_offsets and
// __transaction_state, no initial rebalance delay, session timeouts down to
// one second, and no automatic topic creation.
//
// A package's tests typically share one broker through TestMain:
//
//	var addrs []string
//
//	func TestMain(m *testing.M) {
//		b, err := kafkabroker.Start(context.Background())
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		addrs = b.Addrs()
//		code := m.Run()
//		if err := b.Close(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
// Tests of broker faults run a [Cluster] of their own instead: [StartCluster]
// always starts broker JVMs (one node or several, each broker and KRaft
// controller, with every topic replicated over up to three nodes), whatever
// KAFKA_BROKERS says, so that killing a node never disturbs a broker that
// other tests share. Any node can be killed with SIGKILL
// ([Cluster.Kill]), stopped cleanly ([Cluster.Stop]) and restarted on its
// log directory and its ports ([Cluster.Restart]); clients keep their
// bootstrap addresses.
//
// When a test fails, [Broker.LogTail] shows the last lines of the broker's log
// (warnings and errors only), which usually names the cause.
//
// Every goroutine the package starts belongs to a [Broker] or a [Cluster]
// and ends in its Close: a JVM broker owns one goroutine, which waits for
// the process, and a cluster node one per run of its JVM. A JVM broker (or
// node) dies with the test process even when Close does not
// run (Linux parent-death signal), so a crashed test leaves no broker behind;
// testcontainers' reaper does the same for containers.
package kafkabroker
