package kafkabroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/eddystream/eddy/internal/filelock"
)

// The jar cache holds, per Kafka version, the class path of a broker:
//
//	<cache>/eddy/kafka/<version>/libs/*.jar   the complete class path
//	<cache>/eddy/kafka/<version>/download.lock held while downloading
//	<cache>/eddy/kafka/<version>/download-*/   a download in progress
//
// libs appears by a rename of a finished download, so a libs directory is
// always complete, and a reader needs no lock. Downloaders take the lock, so
// two test binaries that start at once download once: the second waits, then
// finds libs.

// dependencyPluginVersion is the maven-dependency-plugin that copies the jars.
// Pinned because Maven 3.8 would otherwise pick an old default; 3.8.1 is the
// newest release built against the Maven 3.6 API, so it runs on Maven 3.6.3+.
const dependencyPluginVersion = "3.8.1"

// fetchFunc downloads the class path of Kafka version into the directory dst,
// which does not exist yet.
type fetchFunc func(ctx context.Context, version, dst string) error

// defaultCacheDir returns os.UserCacheDir()/eddy/kafka.
func defaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kafkabroker: find a cache directory for the Kafka jars: %w (set XDG_CACHE_HOME or HOME)", err)
	}
	return filepath.Join(dir, "eddy", "kafka"), nil
}

// libsDir returns where the jars of version live under cacheDir.
func libsDir(cacheDir, version string) string {
	return filepath.Join(cacheDir, version, "libs")
}

// hasKafkaJars reports whether dir holds the class path of Kafka version: the
// broker jar kafka_2.13-<version>.jar and the kafka-server jar next to it.
func hasKafkaJars(dir, version string) bool {
	for _, jar := range []string{"kafka_2.13-" + version + ".jar", "kafka-server-" + version + ".jar"} {
		if fi, err := os.Stat(filepath.Join(dir, jar)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// ensureJars returns the cached class path directory of Kafka version,
// downloading it with fetch first if it is not cached. downloaded tells
// whether fetch ran.
func ensureJars(ctx context.Context, cacheDir, version string, fetch fetchFunc, log *slog.Logger) (libs string, downloaded bool, err error) {
	libs = libsDir(cacheDir, version)
	if hasKafkaJars(libs, version) {
		return libs, false, nil
	}
	versionDir := filepath.Dir(libs)
	if err := os.MkdirAll(versionDir, 0o755); err != nil {
		return "", false, fmt.Errorf("kafkabroker: create the Kafka jar cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(versionDir, "download.lock"), log)
	if err != nil {
		return "", false, err
	}
	defer unlock()

	// Another process may have finished the download while we waited.
	if hasKafkaJars(libs, version) {
		return libs, false, nil
	}
	// Holding the lock, we are the only downloader: anything left is debris
	// of one that died (or a libs directory somebody emptied by hand).
	stale, _ := filepath.Glob(filepath.Join(versionDir, "download-*"))
	for _, dir := range append(stale, libs) {
		if err := os.RemoveAll(dir); err != nil {
			return "", false, fmt.Errorf("kafkabroker: remove an unfinished download: %w", err)
		}
	}

	tmp, err := os.MkdirTemp(versionDir, "download-")
	if err != nil {
		return "", false, fmt.Errorf("kafkabroker: create a download directory in the Kafka jar cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	staged := filepath.Join(tmp, "libs")
	log.Info("downloading Kafka jars (once per version)", "version", version, "into", libs)
	start := time.Now()
	if err := fetch(ctx, version, staged); err != nil {
		return "", false, err
	}
	if !hasKafkaJars(staged, version) {
		return "", false, fmt.Errorf("kafkabroker: the download of Kafka %s jars holds no kafka_2.13-%s.jar: check that Maven Central serves this version", version, version)
	}
	if err := os.Rename(staged, libs); err != nil {
		return "", false, fmt.Errorf("kafkabroker: move the downloaded Kafka jars into the cache: %w", err)
	}
	log.Info("downloaded Kafka jars", "version", version, "took", time.Since(start).Round(100*time.Millisecond))
	return libs, true, nil
}

// lockFile takes an exclusive file lock on path, waiting for it as long as
// ctx allows. The lock dies with the process, so a crashed downloader never
// blocks the next one.
func lockFile(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kafkabroker: open the jar cache lock: %w", err)
	}
	waiting := false
	for {
		err := filelock.TryLock(f)
		if err == nil {
			return func() {
				_ = filelock.Unlock(f)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, filelock.ErrLocked) {
			_ = f.Close()
			return nil, fmt.Errorf("kafkabroker: lock the jar cache: %w", err)
		}
		if !waiting {
			waiting = true
			log.Info("waiting for another process to finish downloading Kafka jars", "lock", path)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("kafkabroker: waiting for another process to download Kafka jars (lock %s): %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mavenPOM returns a project whose runtime class path is a Kafka broker of
// version: the broker (kafka_2.13, which brings kafka-server, the storage
// tool, the coordinators and Scala) plus the SLF4J binding to log4j 2, with
// every log4j artifact pinned to one release.
func mavenPOM(version string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by github.com/eddystream/eddy/internal/kafkabroker to fetch a broker's class path. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.github.eddystream.kafkabroker</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>` + version + `</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.logging.log4j</groupId>
        <artifactId>log4j-bom</artifactId>
        <version>` + log4jVersion + `</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>` + version + `</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
    </dependency>
  </dependencies>
</project>
`
}

// mavenFetch is the fetchFunc that runs mvn: it writes mavenPOM next to dst
// and copies the runtime dependencies into dst. Maven keeps its own copy in
// ~/.m2, so a second version or a wiped cache downloads little.
func mavenFetch(ctx context.Context, version, dst string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return fmt.Errorf("kafkabroker: the Kafka %s jars are not cached and mvn is not on PATH: install Maven (apt-get install maven), or set KAFKA_BROKERS to a running broker: %w", version, err)
	}
	pom := filepath.Join(filepath.Dir(dst), "pom.xml")
	if err := os.WriteFile(pom, []byte(mavenPOM(version)), 0o644); err != nil {
		return fmt.Errorf("kafkabroker: write the pom that fetches the Kafka jars: %w", err)
	}
	cmd := exec.CommandContext(ctx, mvn,
		"-q", "-B", "-Dstyle.color=never",
		"-f", pom,
		"org.apache.maven.plugins:maven-dependency-plugin:"+dependencyPluginVersion+":copy-dependencies",
		"-DincludeScope=runtime",
		"-DoutputDirectory="+dst,
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kafkabroker: downloading the Kafka %s jars with mvn: %w", version, ctx.Err())
		}
		return fmt.Errorf("kafkabroker: mvn could not fetch the Kafka %s jars (check that Maven Central is reachable and the version exists): %w\n%s", version, err, lastLines(out.String(), 30))
	}
	return nil
}

// lastLines returns the last n lines of s, without a trailing newline.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if n <= 0 || s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
