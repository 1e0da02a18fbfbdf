package kafkabroker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
)

// setting is one broker configuration entry with the reason it is there.
type setting struct {
	key, value string
	why        string
}

// testSettings are the broker settings that differ from Kafka's defaults, for
// every broker this package starts (JVM or container). They make a single
// node run consumer groups and transactions, and make the first group join
// and the first transaction fast.
var testSettings = []setting{
	{"offsets.topic.replication.factor", "1",
		"__consumer_offsets defaults to 3 replicas, which one broker cannot host: no group could commit"},
	{"offsets.topic.num.partitions", "5",
		"the first FindCoordinator creates __consumer_offsets; 5 partitions instead of 50 make that take milliseconds"},
	{"transaction.state.log.replication.factor", "1",
		"__transaction_state defaults to 3 replicas, which one broker cannot host: no transaction could start"},
	{"transaction.state.log.min.isr", "1",
		"the default of 2 in-sync replicas for __transaction_state is impossible with one replica"},
	{"transaction.state.log.num.partitions", "5",
		"the first InitProducerId creates __transaction_state; 5 partitions instead of 50 make that fast"},
	{"share.coordinator.state.topic.replication.factor", "1",
		"__share_group_state (share groups) defaults to 3 replicas, which one broker cannot host"},
	{"share.coordinator.state.topic.min.isr", "1",
		"the default of 2 in-sync replicas for __share_group_state is impossible with one replica"},
	{"default.replication.factor", "1",
		"topics created without a replication factor get the only one possible"},
	{"num.partitions", "1",
		"topics created without a partition count get one partition (Kafka's default, stated for clarity)"},
	{"auto.create.topics.enable", "false",
		"a misspelt topic fails loudly instead of appearing silently; tests create their topics with the admin client"},
	{"group.initial.rebalance.delay.ms", "0",
		"the first rebalance of a new classic group starts at once instead of after 3 s"},
	{"group.min.session.timeout.ms", "1000",
		"tests may use classic-group session timeouts down to 1 s (default minimum 6 s) to make failover fast"},
	{"log.cleaner.dedupe.buffer.size", "33554432",
		"the log cleaner allocates this on the heap at start; 32 MiB instead of 128 MiB keeps the broker small and is plenty for test-sized compacted topics"},
}

// listenerPorts are the loopback ports of a JVM broker.
type listenerPorts struct {
	broker     int // PLAINTEXT listener, the bootstrap address for clients
	controller int // CONTROLLER listener, the KRaft quorum
}

// serverProperties returns the settings of a JVM broker: a single node that
// is broker and controller (the static quorum is this node alone), listening
// on loopback only, storing its logs and its metadata log in dataDir.
func serverProperties(ports listenerPorts, dataDir string) []setting {
	node := []setting{
		{"process.roles", "broker,controller", "one node is both broker and KRaft controller"},
		{"node.id", "1", "the node's id in the static quorum below"},
		{"controller.quorum.voters", fmt.Sprintf("1@127.0.0.1:%d", ports.controller), "a static quorum of this node alone"},
		{"listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", ports.broker, ports.controller), "loopback only: nothing outside this machine can reach the broker"},
		{"advertised.listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", ports.broker), "clients reconnect to the address they bootstrapped from"},
		{"controller.listener.names", "CONTROLLER", "the listener the quorum uses"},
		{"inter.broker.listener.name", "PLAINTEXT", "the broker talks to itself over the client listener"},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "no TLS or SASL on loopback"},
		{"log.dirs", dataDir, "a fresh temporary directory, removed by Close"},
	}
	return append(node, testSettings...)
}

// renderProperties writes settings in Java properties format, each preceded by
// its reason as a comment.
func renderProperties(settings []setting) string {
	var b strings.Builder
	b.WriteString("# Written by github.com/eddystream/eddy/internal/kafkabroker for a test broker.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "\n# %s\n%s=%s\n", s.why, s.key, escapePropertyValue(s.value))
	}
	return b.String()
}

// escapePropertyValue escapes the characters that java.util.Properties reads
// specially in a value: backslashes and leading white space.
func escapePropertyValue(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	if strings.HasPrefix(v, " ") {
		v = `\` + v
	}
	return v
}

// dockerEnvName maps a broker setting to the environment variable that the
// apache/kafka image turns back into it: a KAFKA_ prefix, upper case, and
// "." as "_", "_" as "__", "-" as "___".
func dockerEnvName(key string) string {
	r := strings.NewReplacer("-", "___", "_", "__", ".", "_")
	return "KAFKA_" + strings.ToUpper(r.Replace(key))
}

// log4jConfig returns a log4j 2 XML configuration that writes warnings and
// errors, and nothing else, to logPath.
func log4jConfig(logPath string) string {
	var path strings.Builder
	// EscapeText only fails when the writer does; a strings.Builder never does.
	_ = xml.EscapeText(&path, []byte(logPath))
	return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by github.com/eddystream/eddy/internal/kafkabroker: warnings and errors only. -->
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="` + path.String() + `" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="warn">
      <AppenderRef ref="file"/>
    </Root>
  </Loggers>
</Configuration>
`
}

// newClusterID returns a random KRaft cluster id the way Kafka's
// Uuid.randomUuid makes one: 16 random bytes of a version 4 UUID in unpadded
// URL-safe base64, never starting with "-" (a command line would read it as a
// flag).
func newClusterID() string {
	for {
		var u [16]byte
		rand.Read(u[:])         // never fails (crypto/rand documents it)
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		id := base64.RawURLEncoding.EncodeToString(u[:])
		if id[0] != '-' {
			return id
		}
	}
}
