package kafkabroker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// clusterReplicas returns the replication factor and the minimum number of
// in-sync replicas of a cluster of n nodes: three replicas and two in sync
// from three nodes on (Kafka's defaults for its internal topics), so that
// losing any one node loses no acknowledged write and stops no writer.
// Smaller clusters get what they can host.
func clusterReplicas(n int) (replicas, minISR int) {
	replicas = min(n, 3)
	return replicas, max(1, replicas-1)
}

// clusterSettings returns testSettings with the replication of a cluster of
// n nodes instead of a single node's, plus the minimum in-sync replicas of
// every topic.
func clusterSettings(n int) []setting {
	rf, isr := clusterReplicas(n)
	r, i := strconv.Itoa(rf), strconv.Itoa(isr)
	replication := map[string]setting{
		"offsets.topic.replication.factor": {"offsets.topic.replication.factor", r,
			"__consumer_offsets is replicated over the cluster, so that its group coordinators survive the loss of a node"},
		"transaction.state.log.replication.factor": {"transaction.state.log.replication.factor", r,
			"__transaction_state is replicated over the cluster, so that its transaction coordinators survive the loss of a node"},
		"transaction.state.log.min.isr": {"transaction.state.log.min.isr", i,
			"a transaction state write needs this many in-sync replicas: one node fewer than the replicas"},
		"share.coordinator.state.topic.replication.factor": {"share.coordinator.state.topic.replication.factor", r,
			"__share_group_state is replicated like the other internal topics"},
		"share.coordinator.state.topic.min.isr": {"share.coordinator.state.topic.min.isr", i,
			"as transaction.state.log.min.isr, for __share_group_state"},
		"default.replication.factor": {"default.replication.factor", r,
			"topics created without a replication factor (eddy's changelog and repartition topics, by default) are replicated like the internal topics"},
	}
	out := make([]setting, 0, len(testSettings)+1)
	for _, s := range testSettings {
		if o, ok := replication[s.key]; ok {
			s = o
		}
		out = append(out, s)
	}
	return append(out, setting{"min.insync.replicas", i,
		"an acks=all write (every idempotent or transactional producer's) needs this many in-sync replicas: with one node lost, writes go on; with two, they stop rather than risk loss"})
}

// clusterNodeProperties returns the settings of node id of a cluster whose
// nodes listen on ports (node id i on ports[i-1]): every node is broker and
// controller, the static quorum is all nodes, and each listens on loopback
// only and keeps its logs and metadata log in dataDir.
func clusterNodeProperties(id int32, ports []listenerPorts, dataDir string) []setting {
	own := ports[id-1]
	voters := make([]string, len(ports))
	for i, p := range ports {
		voters[i] = fmt.Sprintf("%d@127.0.0.1:%d", i+1, p.controller)
	}
	node := []setting{
		{"process.roles", "broker,controller", "every node is both broker and KRaft controller"},
		{"node.id", strconv.Itoa(int(id)), "the node's id in the static quorum below; clients see it as the broker id"},
		{"controller.quorum.voters", strings.Join(voters, ","), "a static quorum of every node of the cluster"},
		{"listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", own.broker, own.controller), "loopback only: nothing outside this machine can reach the node"},
		{"advertised.listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", own.broker), "clients and the other nodes reach this node at the address it listens on"},
		{"controller.listener.names", "CONTROLLER", "the listener the quorum uses"},
		{"inter.broker.listener.name", "PLAINTEXT", "replication goes over the client listener"},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "no TLS or SASL on loopback"},
		{"log.dirs", dataDir, "the node's own directory, kept across kills and restarts and removed by Close"},
	}
	return append(node, clusterSettings(len(ports))...)
}

// Bounds of the ports a cluster's nodes listen on. See stablePorts.
const (
	stablePortLow  = 10000
	stablePortHigh = 65536 // exclusive
)

// stablePorts returns n distinct loopback ports that are free now and lie
// outside the ephemeral range the kernel draws the local ports of outgoing
// connections from.
//
// A node keeps its ports across a kill and a restart, so that clients'
// bootstrap addresses stay valid. While it is down, a port in the
// ephemeral range could become the local end of any outgoing connection on
// the machine (a client reconnecting to another node, say), and the
// restarted node could not bind it. Ports outside that range are taken
// only by a process that binds them on purpose.
func stablePorts(n int) ([]int, error) {
	lo, hi, err := nonEphemeralRange()
	if err != nil {
		return nil, err
	}
	if hi-lo < 4*n {
		return nil, fmt.Errorf("kafkabroker: only ports %d to %d lie outside the ephemeral port range, too few for %d listeners; widen the range between them", lo, hi-1, n)
	}
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("kafkabroker: found only %d free loopback ports of %d between %d and %d", len(ports), n, lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		if seen[p] {
			continue
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		// Held open until all are picked, so that they differ.
		defer l.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralRangeFile holds Linux's ephemeral port range, "low high".
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// nonEphemeralRange returns the range [lo, hi) of ports at or above
// stablePortLow that lies outside the ephemeral range: below it if there is
// room, else above it. Where the range cannot be read (not Linux), it
// assumes the lowest that the common systems use (Linux 32768; macOS, the
// BSDs and Windows 49152).
func nonEphemeralRange() (lo, hi int, err error) {
	ephLow, ephHigh := 32768, 60999
	if b, err := os.ReadFile(ephemeralRangeFile); err == nil {
		f := strings.Fields(string(b))
		var l, h int
		errL, errH := errors.New("not two fields"), error(nil)
		if len(f) == 2 {
			l, errL = strconv.Atoi(f[0])
			h, errH = strconv.Atoi(f[1])
		}
		if errL != nil || errH != nil || l > h {
			return 0, 0, fmt.Errorf("kafkabroker: cannot read the ephemeral port range in %s: %q", ephemeralRangeFile, b)
		}
		ephLow, ephHigh = l, h
	}
	if ephLow-stablePortLow >= 1000 {
		return stablePortLow, ephLow, nil
	}
	return max(ephHigh+1, stablePortLow), stablePortHigh, nil
}
