package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// dockerProbeTimeout bounds the check for a Docker engine, so that a machine
// without one (or with a stuck one) falls through to the JVM at once.
const dockerProbeTimeout = 2 * time.Second

// Container-side ports of the broker. Only containerClientPort is published;
// the others are used inside the container.
const (
	containerClientPort     = "9092" // PLAINTEXT, advertised as the published host:port
	containerBrokerPort     = "9093" // BROKER, the broker's own inter-broker listener
	containerControllerPort = "9094" // CONTROLLER, the KRaft quorum
)

// containerStartScript is where the container's entrypoint waits for the
// script that starts Kafka. The script is copied in after the container has
// started, because the advertised listener must name the host port that
// Docker published, which is known only then.
const containerStartScript = "/tmp/eddy-kafka-start.sh"

// dockerAvailable reports whether a Docker engine answers, as testcontainers
// finds it (DOCKER_HOST, ~/.testcontainers.properties, the Docker context,
// the default and rootless sockets), within dockerProbeTimeout. testcontainers
// remembers the engine it finds for the life of the process, so the probe's
// deadline also guards the container start that follows.
func dockerAvailable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false
	}
	_ = cli.Close()
	return true
}

// errNoContainer reports that Docker could not start the broker container at
// all (typically: the image cannot be pulled), as opposed to a broker that
// started and did not come up. Start then runs a JVM instead.
var errNoContainer = errors.New("docker could not start the Kafka container")

// containerBroker is an apache/kafka container this package started.
type containerBroker struct {
	ctr *testcontainers.DockerContainer
}

// startContainer runs the apache/kafka image of cfg.version as a single
// KRaft node with the test settings, and waits until it answers.
func startContainer(ctx context.Context, cfg config) (*Broker, error) {
	begin := time.Now()
	image := "apache/kafka:" + cfg.version
	cfg.logger.Info("starting a Kafka container", "image", image)

	var addr string
	publishAddr := testcontainers.ContainerHook(func(ctx context.Context, c testcontainers.Container) error {
		if err := wait.ForMappedPort(containerClientPort+"/tcp").WaitUntilReady(ctx, c); err != nil {
			return fmt.Errorf("wait for Docker to publish the broker port: %w", err)
		}
		endpoint, err := c.PortEndpoint(ctx, containerClientPort+"/tcp", "")
		if err != nil {
			return fmt.Errorf("find the published broker port: %w", err)
		}
		addr = endpoint
		if err := c.CopyToContainer(ctx, []byte(containerScript(endpoint)), containerStartScript, 0o755); err != nil {
			return fmt.Errorf("copy the start script into the container: %w", err)
		}
		return nil
	})

	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithLogger(printfLogger{cfg.logger}),
		testcontainers.WithEnv(containerEnv()),
		testcontainers.WithExposedPorts(containerClientPort+"/tcp"),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+containerStartScript+" ]; do sleep 0.1; done; exec sh "+containerStartScript),
		testcontainers.WithAdditionalLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{publishAddr},
		}),
	)
	cb := &containerBroker{ctr: ctr}
	if err != nil {
		stopErr := cb.stop()
		return nil, fmt.Errorf("kafkabroker: %w: start %s (can Docker pull it? set %s to use a running broker instead): %w", errNoContainer, image, EnvBrokers, joinStopErr(err, stopErr))
	}

	waitCtx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	if err := waitReady(waitCtx, []string{addr}, nil); err != nil {
		tail := cb.logTail(40)
		stopErr := cb.stop()
		return nil, fmt.Errorf("kafkabroker: the Kafka container %s at %s did not come up: %w; last lines of its log:\n%s", image, addr, joinStopErr(err, stopErr), tail)
	}
	cfg.logger.Info("broker ready", "source", SourceTestcontainers, "addr", addr, "image", image,
		"took", time.Since(begin).Round(100*time.Millisecond))
	return &Broker{addrs: []string{addr}, source: SourceTestcontainers, runner: cb}, nil
}

// containerEnv returns the environment that makes the apache/kafka image's
// start script configure a single KRaft node with the test settings. Clients
// reach the PLAINTEXT listener through the published port; the broker talks
// to itself and to its controller inside the container.
func containerEnv() map[string]string {
	env := map[string]string{
		"CLUSTER_ID":                           newClusterID(),
		"KAFKA_NODE_ID":                        "1",
		"KAFKA_PROCESS_ROLES":                  "broker,controller",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":       "1@localhost:" + containerControllerPort,
		"KAFKA_LISTENERS":                      "PLAINTEXT://0.0.0.0:" + containerClientPort + ",BROKER://0.0.0.0:" + containerBrokerPort + ",CONTROLLER://0.0.0.0:" + containerControllerPort,
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_INTER_BROKER_LISTENER_NAME":     "BROKER",
		"KAFKA_CONTROLLER_LISTENER_NAMES":      "CONTROLLER",
		"KAFKA_HEAP_OPTS":                      "-Xms256m -Xmx768m",
	}
	for _, s := range testSettings {
		env[dockerEnvName(s.key)] = s.value
	}
	return env
}

// containerScript returns the script that starts Kafka in the container once
// the published client endpoint (host:port) is known: clients must be told to
// come back to that endpoint, not to the container's own address.
func containerScript(endpoint string) string {
	return "#!/bin/sh\n" +
		"export KAFKA_ADVERTISED_LISTENERS='PLAINTEXT://" + endpoint + ",BROKER://localhost:" + containerBrokerPort + "'\n" +
		"exec /etc/kafka/docker/run\n"
}

// joinStopErr adds the error of cleaning up after a failed start, if any.
func joinStopErr(err, stopErr error) error {
	if stopErr == nil {
		return err
	}
	return fmt.Errorf("%w (and cleaning up: %v)", err, stopErr)
}

// logTail returns the last n lines of the container's output.
func (cb *containerBroker) logTail(n int) string {
	if cb.ctr == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := cb.ctr.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	return lastLines(string(out), n)
}

// stop terminates the container and waits for it to be removed. Kafka gets
// stopGrace to shut down before Docker kills it.
func (cb *containerBroker) stop() error {
	if err := testcontainers.TerminateContainer(cb.ctr, testcontainers.StopTimeout(stopGrace)); err != nil {
		return fmt.Errorf("kafkabroker: terminate the Kafka container (remove it with docker rm -f): %w", err)
	}
	return nil
}

// printfLogger passes testcontainers' progress lines to a slog.Logger.
type printfLogger struct{ l *slog.Logger }

// Printf implements testcontainers' log.Logger.
func (p printfLogger) Printf(format string, v ...any) {
	p.l.Info(strings.TrimSpace(fmt.Sprintf(format, v...)), "source", SourceTestcontainers)
}
