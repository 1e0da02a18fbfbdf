package kafkabroker

import (
	"encoding/base64"
	"encoding/xml"
	"strings"
	"testing"
)

// parseProperties reads the subset of the Java properties format that
// renderProperties writes: comments, blank lines, key=value with escaped
// backslashes and leading spaces.
func parseProperties(t *testing.T, s string) map[string]string {
	t.Helper()
	props := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %q is neither a comment nor key=value", line)
		}
		if _, dup := props[key]; dup {
			t.Fatalf("key %q appears twice", key)
		}
		value = strings.TrimPrefix(value, `\ `) // an escaped leading space
		props[key] = strings.ReplaceAll(value, `\\`, `\`)
	}
	return props
}

func TestServerProperties(t *testing.T) {
	const dataDir = `/tmp/eddy kafka\data`
	settings := serverProperties(listenerPorts{broker: 40001, controller: 40002}, dataDir)
	for _, s := range settings {
		if strings.TrimSpace(s.why) == "" {
			t.Errorf("setting %s has no reason; every setting documents why it is there", s.key)
		}
	}
	props := parseProperties(t, renderProperties(settings))

	want := map[string]string{
		"process.roles":                            "broker,controller",
		"node.id":                                  "1",
		"controller.quorum.voters":                 "1@127.0.0.1:40002",
		"listeners":                                "PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002",
		"advertised.listeners":                     "PLAINTEXT://127.0.0.1:40001",
		"controller.listener.names":                "CONTROLLER",
		"inter.broker.listener.name":               "PLAINTEXT",
		"log.dirs":                                 dataDir,
		"offsets.topic.replication.factor":         "1",
		"transaction.state.log.replication.factor": "1",
		"transaction.state.log.min.isr":            "1",
		"group.initial.rebalance.delay.ms":         "0",
		"group.min.session.timeout.ms":             "1000",
		"auto.create.topics.enable":                "false",
		"num.partitions":                           "1",
	}
	for key, value := range want {
		if got, ok := props[key]; !ok || got != value {
			t.Errorf("%s = %q (present %v), want %q", key, got, ok, value)
		}
	}
	if len(props) != len(settings) {
		t.Errorf("rendered %d properties from %d settings", len(props), len(settings))
	}
}

func TestEscapePropertyValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{`C:\dir`, `C:\\dir`},
		{" lead", `\ lead`},
		{"a=b:c", "a=b:c"},
	} {
		if got := escapePropertyValue(tc.in); got != tc.want {
			t.Errorf("escapePropertyValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDockerEnvName(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"offsets.topic.replication.factor", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"},
		{"num.partitions", "KAFKA_NUM_PARTITIONS"},
		{"a_b.c-d", "KAFKA_A__B_C___D"},
	} {
		if got := dockerEnvName(tc.key); got != tc.want {
			t.Errorf("dockerEnvName(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestLog4jConfig(t *testing.T) {
	const logPath = `/tmp/a&b<c>"d"/kafka.log`
	var cfg struct {
		Appenders struct {
			File struct {
				FileName string `xml:"fileName,attr"`
			}
		}
		Loggers struct {
			Root struct {
				Level string `xml:"level,attr"`
			}
		}
	}
	if err := xml.Unmarshal([]byte(log4jConfig(logPath)), &cfg); err != nil {
		t.Fatalf("log4j configuration is not XML: %v", err)
	}
	if cfg.Appenders.File.FileName != logPath {
		t.Errorf("fileName = %q, want %q", cfg.Appenders.File.FileName, logPath)
	}
	if cfg.Loggers.Root.Level != "warn" {
		t.Errorf("root level = %q, want warn", cfg.Loggers.Root.Level)
	}
}

func TestNewClusterID(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := newClusterID()
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("cluster id %q is not 16 bytes of unpadded URL-safe base64 (err %v)", id, err)
		}
		if id[0] == '-' {
			t.Fatalf("cluster id %q starts with '-'", id)
		}
		if raw[6]>>4 != 4 {
			t.Fatalf("cluster id %q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("cluster id %q repeats", id)
		}
		seen[id] = true
	}
}

func TestContainerEnv(t *testing.T) {
	env := containerEnv()
	for _, s := range testSettings {
		if got := env[dockerEnvName(s.key)]; got != s.value {
			t.Errorf("%s = %q, want %q (for %s)", dockerEnvName(s.key), got, s.value, s.key)
		}
	}
	// The image's start script requires these for a KRaft node.
	for _, name := range []string{"CLUSTER_ID", "KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_LISTENERS", "KAFKA_CONTROLLER_LISTENER_NAMES"} {
		if env[name] == "" {
			t.Errorf("%s is not set", name)
		}
	}
	if _, ok := env["KAFKA_ADVERTISED_LISTENERS"]; ok {
		t.Error("KAFKA_ADVERTISED_LISTENERS is set before the published port is known")
	}
}

func TestContainerScript(t *testing.T) {
	script := containerScript("localhost:55001")
	if !strings.Contains(script, "KAFKA_ADVERTISED_LISTENERS='PLAINTEXT://localhost:55001,BROKER://localhost:"+containerBrokerPort+"'") {
		t.Errorf("script does not advertise the published endpoint:\n%s", script)
	}
	if !strings.HasSuffix(script, "exec /etc/kafka/docker/run\n") {
		t.Errorf("script does not hand over to the image's run script:\n%s", script)
	}
}
