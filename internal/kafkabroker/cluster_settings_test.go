package kafkabroker

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestClusterNodeProperties(t *testing.T) {
	ports := []listenerPorts{{20001, 20002}, {20003, 20004}, {20005, 20006}}
	for _, tc := range []struct {
		nodes       int
		rf, minISR  string
		wantVoters  string
		node        int32
		wantListens string
	}{
		{1, "1", "1", "1@127.0.0.1:20002", 1, "PLAINTEXT://127.0.0.1:20001,CONTROLLER://127.0.0.1:20002"},
		{2, "2", "1", "1@127.0.0.1:20002,2@127.0.0.1:20004", 2, "PLAINTEXT://127.0.0.1:20003,CONTROLLER://127.0.0.1:20004"},
		{3, "3", "2", "1@127.0.0.1:20002,2@127.0.0.1:20004,3@127.0.0.1:20006", 3, "PLAINTEXT://127.0.0.1:20005,CONTROLLER://127.0.0.1:20006"},
	} {
		settings := clusterNodeProperties(tc.node, ports[:tc.nodes], "/data")
		for _, s := range settings {
			if strings.TrimSpace(s.why) == "" {
				t.Errorf("setting %s has no reason; every setting documents why it is there", s.key)
			}
		}
		// parseProperties fails on a key set twice.
		props := parseProperties(t, renderProperties(settings))
		want := map[string]string{
			"node.id":                          strconv.Itoa(int(tc.node)),
			"controller.quorum.voters":         tc.wantVoters,
			"listeners":                        tc.wantListens,
			"advertised.listeners":             strings.Split(tc.wantListens, ",")[0],
			"log.dirs":                         "/data",
			"offsets.topic.replication.factor": tc.rf,
			"transaction.state.log.replication.factor":         tc.rf,
			"transaction.state.log.min.isr":                    tc.minISR,
			"share.coordinator.state.topic.replication.factor": tc.rf,
			"share.coordinator.state.topic.min.isr":            tc.minISR,
			"default.replication.factor":                       tc.rf,
			"min.insync.replicas":                              tc.minISR,
			// The single node's other test settings stay.
			"group.initial.rebalance.delay.ms": "0",
			"auto.create.topics.enable":        "false",
		}
		for key, value := range want {
			if got, ok := props[key]; !ok || got != value {
				t.Errorf("%d nodes, node %d: %s = %q (present %v), want %q", tc.nodes, tc.node, key, got, ok, value)
			}
		}
		// Every test setting is there, replaced or not.
		for _, s := range testSettings {
			if _, ok := props[s.key]; !ok {
				t.Errorf("%d nodes: test setting %s is missing", tc.nodes, s.key)
			}
		}
	}
}

func TestStablePortsAvoidTheEphemeralRange(t *testing.T) {
	lo, hi, err := nonEphemeralRange()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(ephemeralRangeFile); err == nil {
		f := strings.Fields(string(b))
		ephLow, _ := strconv.Atoi(f[0])
		ephHigh, _ := strconv.Atoi(f[1])
		if hi > ephLow && lo <= ephHigh {
			t.Fatalf("range [%d, %d) overlaps the ephemeral range %d-%d", lo, hi, ephLow, ephHigh)
		}
	}
	ports, err := stablePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 6 {
		t.Errorf("ports %v are not distinct", ports)
	}
	for _, p := range ports {
		if p < lo || p >= hi {
			t.Errorf("port %d is outside [%d, %d)", p, lo, hi)
		}
	}
}

func TestWithHeap(t *testing.T) {
	got := withHeap([]string{"-Xms256m", "-XX:+UseG1GC", "-Xmx768m", "-Dx=y"}, []string{"-Xms1m", "-Xmx2m"})
	if want := []string{"-Xms1m", "-Xmx2m", "-XX:+UseG1GC", "-Dx=y"}; !slices.Equal(got, want) {
		t.Errorf("withHeap = %q, want %q", got, want)
	}
}
