package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a Kafka cluster of broker JVMs that this process runs and
// owns, for tests of broker faults: any node can be killed with SIGKILL,
// stopped cleanly, and restarted on its log directory and its ports, so
// that clients' bootstrap addresses stay valid. Nodes are numbered by their
// Kafka node id, 1 to n, which is also the broker id that clients and kadm
// report (a group coordinator's NodeID, a partition's leader). It is safe
// for concurrent use; operations on one node run one at a time.
type Cluster struct {
	nodes        []*clusterNode
	dir          string // holds every node's directory
	startTimeout time.Duration
	log          *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// StartCluster starts a cluster of nodes broker JVMs from the cached Apache
// Kafka jars (downloading them with mvn the first time) and waits until
// every node answers and lists every other. It always runs JVMs, whatever
// KAFKA_BROKERS says and whether Docker answers: a fault test must not
// kill a broker that others use. It needs java (Java 17+).
//
// Every node is both broker and KRaft controller, and the static quorum is
// all nodes: a cluster of three keeps its quorum when one node is down. The
// settings are Start's (see the package doc) except for replication: every
// internal topic and every topic created without a replication factor gets
// min(nodes, 3) replicas, and min.insync.replicas (for the transaction
// state too) is one fewer, at least 1. With three nodes, losing one stops
// no writer and loses no acknowledged write. A killed node is fenced by
// the controller after broker.session.timeout.ms (Kafka's default, 9 s);
// its partitions move to other leaders then.
//
// Each node is a JVM with a heap of up to 512 MiB and takes about 0.5 GiB
// in all. Its ports lie outside the ephemeral port range, so that no
// outgoing connection takes them while the node is down.
//
// ctx bounds the start only; [WithStartTimeout] bounds the wait for the
// nodes, here and in [Cluster.Restart]. An error from a cluster that did
// not come up carries the tail of a node's log.
func StartCluster(ctx context.Context, nodes int, opts ...Option) (*Cluster, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if nodes < 1 {
		return nil, fmt.Errorf("kafkabroker: a cluster needs at least one node, got %d", nodes)
	}
	begin := time.Now()
	java, err := findJava()
	if err != nil {
		// findJava's message offers Docker and KAFKA_BROKERS, which a
		// cluster does not use.
		return nil, fmt.Errorf("kafkabroker: StartCluster runs its nodes as JVMs and java is not found: install a Java 17+ runtime (apt-get install openjdk-17-jre-headless) or set JAVA_HOME: %w", exec.ErrNotFound)
	}
	cacheDir, err := defaultCacheDir()
	if err != nil {
		return nil, err
	}
	libs, _, err := ensureJars(ctx, cacheDir, cfg.version, mavenFetch, cfg.logger)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		c, err := launchCluster(ctx, cfg, java, libs, nodes)
		if err == nil {
			cfg.logger.Info("cluster ready", "nodes", nodes, "addrs", c.Addrs(), "version", cfg.version,
				"took", time.Since(begin).Round(100*time.Millisecond), "dir", c.dir)
			return c, nil
		}
		if errors.Is(err, errPortTaken) && attempt < bindAttempts {
			cfg.logger.Info("a node's port was taken; retrying on other ports", "attempt", attempt)
			continue
		}
		return nil, err
	}
}

// errPortTaken reports a node that exited because a port it was given was
// taken.
var errPortTaken = errors.New("a port of the node is taken")

// clusterHeap is the heap of a cluster node's JVM: test traffic needs
// little, and a cluster runs several.
var clusterHeap = []string{"-Xms128m", "-Xmx512m"}

// launchCluster formats and starts the nodes of a new cluster on fresh
// ports and waits for them.
func launchCluster(ctx context.Context, cfg config, java, libs string, n int) (c *Cluster, err error) {
	portList, err := stablePorts(2 * n)
	if err != nil {
		return nil, err
	}
	ports := make([]listenerPorts, n)
	for i := range ports {
		ports[i] = listenerPorts{broker: portList[2*i], controller: portList[2*i+1]}
	}
	dir, err := os.MkdirTemp("", "eddy-kafka-cluster-")
	if err != nil {
		return nil, fmt.Errorf("kafkabroker: create a temporary directory for the cluster: %w", err)
	}
	c = &Cluster{dir: dir, startTimeout: cfg.startTimeout, log: cfg.logger}
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				cfg.logger.Warn("cleaning up a cluster that did not start", "err", cerr)
			}
		}
	}()
	clusterID := newClusterID()
	for i := range n {
		node, err := newClusterNode(dir, int32(i+1), ports, java, libs, cfg.logger)
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, node)
	}

	// Format every node's storage with the same cluster id, all at once:
	// each format is a JVM start.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range c.nodes {
		wg.Go(func() { errs[i] = node.format(ctx, clusterID) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}

	for _, node := range c.nodes {
		if err := node.launch("start"); err != nil {
			return c, err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	all := c.nodeIDs()
	for _, node := range c.nodes {
		if err := waitNodeReady(waitCtx, node.addr, all, launchFailure(node.proc.exited, node.logPath, node.proc.logStart)); err != nil {
			return c, node.startError(cfg.version, err)
		}
	}
	return c, nil
}

// Addrs returns the bootstrap addresses (host:port) of every node, node 1
// first (node id's address is Addrs()[id-1]), for kgo.SeedBrokers. They
// stay valid across kills and restarts.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// Running reports whether node id's JVM runs: started or restarted, and
// neither killed, stopped nor exited by itself.
func (c *Cluster) Running(id int32) bool {
	n, err := c.node(id)
	if err != nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

// Kill kills node id's JVM with SIGKILL, as a crash or a power cut would
// end it (short of losing what the page cache holds), and returns once it
// has exited. Its log directory stays for [Cluster.Restart]. Killing a node
// that does not run is an error.
func (c *Cluster) Kill(id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return n.notRunningLocked("kill")
	}
	n.proc.kill()
	n.log.Info("node killed", "node", n.id)
	return nil
}

// Stop stops node id's JVM with SIGTERM, which makes it shut down cleanly
// (hand its partitions' leadership over, close its logs), and returns once
// it has exited. A node still running after 15 s gets SIGKILL. Its log
// directory stays for [Cluster.Restart]. Stopping a node that does not run
// is an error.
func (c *Cluster) Stop(id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return n.notRunningLocked("stop")
	}
	if !n.proc.terminate(stopGrace) {
		n.log.Warn("the node did not stop after SIGTERM; killed it", "node", n.id, "grace", stopGrace)
	}
	n.log.Info("node stopped", "node", n.id)
	return nil
}

// Restart starts node id's JVM again after [Cluster.Kill] or
// [Cluster.Stop] (or after it exited by itself), on the same log directory
// and the same ports, and waits until the node answers a metadata request
// that lists it (it has caught up with the metadata log and the controller
// has unfenced it). A killed node recovers its logs first, as after any
// unclean shutdown, and the controller accepts its registration only once
// the session of the killed run has expired (broker.session.timeout.ms,
// 9 s, counted in a one-node cluster from the controller's own restart):
// a restart right after a kill takes 15 to 20 s on a loaded machine. ctx and
// [WithStartTimeout] bound the wait; a node that does not come up is
// killed again and the error carries its log's tail.
// Restarting a running node is an error.
func (c *Cluster) Restart(ctx context.Context, id int32) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("kafkabroker: node %d is running: Kill or Stop it before Restart", id)
	}
	begin := time.Now()
	if err := n.launch("restart"); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, c.startTimeout)
	defer cancel()
	if err := waitNodeReady(waitCtx, n.addr, []int32{id}, launchFailure(n.proc.exited, n.logPath, n.proc.logStart)); err != nil {
		err = n.startError("", err)
		n.proc.kill()
		return err
	}
	n.log.Info("node restarted", "node", id, "addr", n.addr, "took", time.Since(begin).Round(10*time.Millisecond))
	return nil
}

// LogTail returns the last lines lines of node id's log: warnings and
// errors of every run of the node, each run starting with a line that says
// when and why it started. It returns "" after Close.
func (c *Cluster) LogTail(id int32, lines int) string {
	n, err := c.node(id)
	if err != nil {
		return ""
	}
	return lastLines(readFile(n.logPath), lines)
}

// Close kills every node that runs (SIGKILL: their data is deleted next,
// so a clean shutdown would only take time, and a cluster that has lost
// its quorum may never finish one), waits for them, and removes the
// cluster's directory. Later calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		for _, n := range c.nodes {
			n.mu.Lock()
			if n.runningLocked() {
				n.proc.kill()
			}
			n.mu.Unlock()
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.closeErr = fmt.Errorf("kafkabroker: remove the cluster's directory (safe to delete by hand): %w", err)
		}
	})
	return c.closeErr
}

// node returns node id.
func (c *Cluster) node(id int32) (*clusterNode, error) {
	if id < 1 || int(id) > len(c.nodes) {
		return nil, fmt.Errorf("kafkabroker: the cluster has nodes 1 to %d, not %d", len(c.nodes), id)
	}
	return c.nodes[id-1], nil
}

// nodeIDs returns the ids of every node.
func (c *Cluster) nodeIDs() []int32 {
	ids := make([]int32, len(c.nodes))
	for i, n := range c.nodes {
		ids[i] = n.id
	}
	return ids
}

// clusterNode is one node of a Cluster: its fixed identity, ports and
// files, and the JVM that runs it, if any.
type clusterNode struct {
	id        int32
	addr      string // host:port of the PLAINTEXT listener
	ports     listenerPorts
	java      string
	classPath string
	dir       string // data, server.properties, log4j2.xml and kafka.log
	propsPath string
	log4jFlag string
	logPath   string
	log       *slog.Logger

	mu   sync.Mutex // serialises kill, stop, restart and close
	proc *nodeProcess
}

// newClusterNode writes the configuration of node id of a cluster on ports
// into a new directory under dir.
func newClusterNode(dir string, id int32, ports []listenerPorts, java, libs string, log *slog.Logger) (*clusterNode, error) {
	nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", id))
	n := &clusterNode{
		id:        id,
		addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[id-1].broker)),
		ports:     ports[id-1],
		java:      java,
		classPath: filepath.Join(libs, "*"),
		dir:       nodeDir,
		propsPath: filepath.Join(nodeDir, "server.properties"),
		logPath:   filepath.Join(nodeDir, "kafka.log"),
		log:       log,
	}
	log4jPath := filepath.Join(nodeDir, "log4j2.xml")
	n.log4jFlag = "-Dlog4j2.configurationFile=" + log4jPath
	if err := os.Mkdir(nodeDir, 0o755); err != nil {
		return nil, fmt.Errorf("kafkabroker: create the directory of node %d: %w", id, err)
	}
	props := renderProperties(clusterNodeProperties(id, ports, filepath.Join(nodeDir, "data")))
	if err := os.WriteFile(n.propsPath, []byte(props), 0o644); err != nil {
		return nil, fmt.Errorf("kafkabroker: write the server.properties of node %d: %w", id, err)
	}
	if err := os.WriteFile(log4jPath, []byte(log4jConfig(n.logPath)), 0o644); err != nil {
		return nil, fmt.Errorf("kafkabroker: write the log4j configuration of node %d: %w", id, err)
	}
	return n, nil
}

// format writes the node's KRaft storage: meta.properties with clusterID
// and the node id, and the bootstrap metadata.
func (n *clusterNode) format(ctx context.Context, clusterID string) error {
	cmd := exec.CommandContext(ctx, n.java, slices.Concat(toolOptions, []string{
		n.log4jFlag, "-cp", n.classPath, "kafka.tools.StorageTool",
		"format", "--cluster-id", clusterID, "--config", n.propsPath})...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kafkabroker: formatting the storage of node %d: %w", n.id, ctx.Err())
		}
		return fmt.Errorf("kafkabroker: format the storage of node %d (kafka.tools.StorageTool; Kafka 4.x needs Java 17+): %w\n%s", n.id, err, lastLines(out.String()+readFile(n.logPath), 30))
	}
	return nil
}

// launch starts the node's JVM on its configuration, after a line in its
// log that says why (start or restart). It does not wait for the node.
// n.mu is held, or n is not shared yet.
func (n *clusterNode) launch(why string) error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kafkabroker: open the log of node %d: %w", n.id, err)
	}
	// The child has its own descriptor once started.
	defer logFile.Close()
	fmt.Fprintf(logFile, "[%s] eddy kafkabroker: %s of node %d\n", time.Now().Format("2006-01-02 15:04:05,000"), why, n.id)
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("kafkabroker: find the end of the log of node %d: %w", n.id, err)
	}
	// Not CommandContext: the node runs until it is killed or stopped.
	cmd := exec.Command(n.java, slices.Concat(withHeap(jvmOptions, clusterHeap), []string{
		n.log4jFlag, "-cp", n.classPath, "kafka.Kafka", n.propsPath})...)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kafkabroker: start the JVM of node %d (%s): %w", n.id, n.java, err)
	}
	p := &nodeProcess{cmd: cmd, exited: make(chan struct{}), logStart: logStart}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	n.proc = p
	return nil
}

// runningLocked reports whether the node's last JVM still runs. n.mu is
// held.
func (n *clusterNode) runningLocked() bool {
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.exited:
		return false
	default:
		return true
	}
}

// notRunningLocked is the error of an operation on a node that does not
// run; it says if the node exited by itself. n.mu is held.
func (n *clusterNode) notRunningLocked(op string) error {
	return fmt.Errorf("kafkabroker: cannot %s node %d: it does not run (its last run ended with %v; see LogTail)", op, n.id, n.proc.waitErr)
}

// startError describes a start or restart of the node that did not come
// up (version is "" on a restart), with the tail of its log, wrapping
// errPortTaken if a port was taken.
func (n *clusterNode) startError(version string, err error) error {
	if errors.Is(err, errBrokerExited) && n.proc.waitErr != nil {
		err = fmt.Errorf("%w: %v", err, n.proc.waitErr)
	}
	tail := n.logTail(40)
	if errors.Is(err, errBindFailed) || errors.Is(err, errBrokerExited) && isBindFailure(tail) {
		err = fmt.Errorf("%w (%d or %d; something bound it while the node was down): %w", errPortTaken, n.ports.broker, n.ports.controller, err)
	}
	what := "Kafka node"
	if version != "" {
		what = "Kafka " + version + " node"
	}
	return fmt.Errorf("kafkabroker: the %s %d at %s did not come up: %w; last lines of its log:\n%s", what, n.id, n.addr, err, tail)
}

// logTail returns the last n lines of the node's log.
func (n *clusterNode) logTail(lines int) string {
	return lastLines(readFile(n.logPath), lines)
}

// nodeProcess is one run of a node's JVM.
type nodeProcess struct {
	cmd *exec.Cmd
	// exited is closed by the goroutine that waits for cmd, after it has
	// set waitErr.
	exited  chan struct{}
	waitErr error
	// logStart is where this run's lines begin in the node's log, which
	// keeps the lines of earlier runs.
	logStart int64
}

// kill sends SIGKILL and waits for the process to exit.
func (p *nodeProcess) kill() {
	_ = p.cmd.Process.Kill() // fails only if it has exited, which <-exited covers
	<-p.exited
}

// terminate sends SIGTERM and waits for the process to exit; after grace
// it kills it and reports false.
func (p *nodeProcess) terminate(grace time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		p.kill()
		return false
	}
}

// withHeap returns opts with its heap flags (-Xms, -Xmx) replaced by heap.
func withHeap(opts, heap []string) []string {
	out := slices.Clone(heap)
	for _, o := range opts {
		if !strings.HasPrefix(o, "-Xms") && !strings.HasPrefix(o, "-Xmx") {
			out = append(out, o)
		}
	}
	return out
}

// waitNodeReady waits until the node at addr answers a metadata request,
// sent to it and no other node, whose broker list holds every id of want
// (a KRaft broker lists a node once the controller has unfenced it), until
// ctx is done, or until failed returns an error.
func waitNodeReady(ctx context.Context, addr string, want []int32, failed func() error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		return fmt.Errorf("create a client for %s: %w", addr, err)
	}
	defer cl.Close()
	seed := cl.SeedBrokers()[0]

	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	var lastErr error
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := seed.Request(attempt, req)
		cancel()
		if err != nil {
			lastErr = err
		} else {
			listed := map[int32]bool{}
			for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
				listed[b.NodeID] = true
			}
			var missing []int32
			for _, id := range want {
				if !listed[id] {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			lastErr = fmt.Errorf("the metadata response does not list nodes %v yet", missing)
		}
		if err := failed(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), lastErr)
		case <-retry.C:
		}
	}
}
