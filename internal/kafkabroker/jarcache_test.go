package kafkabroker

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testVersion = "4.9.9"

// fakeFetch is a fetchFunc that writes the two jars hasKafkaJars looks for,
// after a pause that lets concurrent callers pile up, and counts its calls.
type fakeFetch struct {
	calls atomic.Int32
	pause time.Duration
	err   error // returned after writing a partial download, if set
}

func (f *fakeFetch) fetch(ctx context.Context, version, dst string) error {
	f.calls.Add(1)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "kafka_2.13-"+version+".jar"), []byte("jar"), 0o644); err != nil {
		return err
	}
	time.Sleep(f.pause)
	if f.err != nil {
		return f.err
	}
	return os.WriteFile(filepath.Join(dst, "kafka-server-"+version+".jar"), []byte("jar"), 0o644)
}

// leftovers lists what is in the version directory besides libs and the lock.
func leftovers(t *testing.T, cacheDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(cacheDir, testVersion))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "libs" && e.Name() != "download.lock" {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestHasKafkaJars(t *testing.T) {
	dir := t.TempDir()
	if hasKafkaJars(dir, testVersion) {
		t.Error("an empty directory counts as a cache hit")
	}
	if hasKafkaJars(filepath.Join(dir, "missing"), testVersion) {
		t.Error("a missing directory counts as a cache hit")
	}
	if err := os.WriteFile(filepath.Join(dir, "kafka_2.13-"+testVersion+".jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if hasKafkaJars(dir, testVersion) {
		t.Error("a directory without kafka-server counts as a cache hit")
	}
	if err := os.Mkdir(filepath.Join(dir, "kafka-server-"+testVersion+".jar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if hasKafkaJars(dir, testVersion) {
		t.Error("a directory named like a jar counts as a jar")
	}
	if err := os.Remove(filepath.Join(dir, "kafka-server-"+testVersion+".jar")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kafka-server-"+testVersion+".jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !hasKafkaJars(dir, testVersion) {
		t.Error("a directory with both jars is not a cache hit")
	}
	if hasKafkaJars(dir, "4.0.0") {
		t.Error("the jars of one version count as a cache hit for another")
	}
}

func TestEnsureJarsDownloadsOnceAcrossConcurrentCallers(t *testing.T) {
	cacheDir := t.TempDir()
	f := &fakeFetch{pause: 300 * time.Millisecond}
	const callers = 4
	var (
		wg         sync.WaitGroup
		downloads  atomic.Int32
		errs       = make([]error, callers)
		libsByCall = make([]string, callers)
	)
	for i := range callers {
		wg.Go(func() {
			libs, downloaded, err := ensureJars(t.Context(), cacheDir, testVersion, f.fetch, slog.New(slog.DiscardHandler))
			errs[i], libsByCall[i] = err, libs
			if downloaded {
				downloads.Add(1)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if want := libsDir(cacheDir, testVersion); libsByCall[i] != want {
			t.Errorf("caller %d got libs %q, want %q", i, libsByCall[i], want)
		}
	}
	if f.calls.Load() != 1 || downloads.Load() != 1 {
		t.Fatalf("fetch ran %d times and %d callers reported a download; want 1 and 1", f.calls.Load(), downloads.Load())
	}

	// A later start finds the cache and does not fetch.
	_, downloaded, err := ensureJars(t.Context(), cacheDir, testVersion, f.fetch, slog.New(slog.DiscardHandler))
	if err != nil || downloaded || f.calls.Load() != 1 {
		t.Fatalf("cached ensureJars: downloaded=%v err=%v fetch calls=%d; want a cache hit", downloaded, err, f.calls.Load())
	}
	if left := leftovers(t, cacheDir); len(left) != 0 {
		t.Errorf("the cache holds leftovers %q", left)
	}
}

func TestEnsureJarsFailedFetchLeavesNoCache(t *testing.T) {
	cacheDir := t.TempDir()
	boom := errors.New("registry unreachable")
	_, _, err := ensureJars(t.Context(), cacheDir, testVersion, (&fakeFetch{err: boom}).fetch, slog.New(slog.DiscardHandler))
	if !errors.Is(err, boom) {
		t.Fatalf("ensureJars = %v, want the fetch error", err)
	}
	if _, err := os.Stat(libsDir(cacheDir, testVersion)); !os.IsNotExist(err) {
		t.Errorf("a failed download left a libs directory (stat: %v)", err)
	}
	if left := leftovers(t, cacheDir); len(left) != 0 {
		t.Errorf("a failed download left %q", left)
	}

	// The next start downloads again and succeeds.
	f := &fakeFetch{}
	if _, downloaded, err := ensureJars(t.Context(), cacheDir, testVersion, f.fetch, slog.New(slog.DiscardHandler)); err != nil || !downloaded {
		t.Fatalf("ensureJars after a failure: downloaded=%v err=%v", downloaded, err)
	}
}

func TestEnsureJarsRejectsDownloadWithoutKafka(t *testing.T) {
	cacheDir := t.TempDir()
	empty := func(ctx context.Context, version, dst string) error { return os.MkdirAll(dst, 0o755) }
	_, _, err := ensureJars(t.Context(), cacheDir, testVersion, empty, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "kafka_2.13-"+testVersion+".jar") {
		t.Fatalf("ensureJars = %v, want an error naming the missing jar", err)
	}
	if _, err := os.Stat(libsDir(cacheDir, testVersion)); !os.IsNotExist(err) {
		t.Errorf("an empty download became the cache (stat: %v)", err)
	}
}

func TestEnsureJarsRemovesDebrisOfDeadDownloads(t *testing.T) {
	cacheDir := t.TempDir()
	for _, dir := range []string{"download-123/libs", "libs"} { // libs without the jars: emptied by hand
		if err := os.MkdirAll(filepath.Join(cacheDir, testVersion, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cacheDir, testVersion, "libs", "stale.jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	libs, downloaded, err := ensureJars(t.Context(), cacheDir, testVersion, (&fakeFetch{}).fetch, slog.New(slog.DiscardHandler))
	if err != nil || !downloaded {
		t.Fatalf("ensureJars: downloaded=%v err=%v", downloaded, err)
	}
	if left := leftovers(t, cacheDir); len(left) != 0 {
		t.Errorf("debris left: %q", left)
	}
	if _, err := os.Stat(filepath.Join(libs, "stale.jar")); !os.IsNotExist(err) {
		t.Errorf("a jar of the incomplete libs directory survived (stat: %v)", err)
	}
}

func TestEnsureJarsWaitsForTheLockOnlyAsLongAsTheContext(t *testing.T) {
	cacheDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cacheDir, testVersion), 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(t.Context(), filepath.Join(cacheDir, testVersion, "download.lock"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	f := &fakeFetch{}
	_, _, err = ensureJars(ctx, cacheDir, testVersion, f.fetch, slog.New(slog.DiscardHandler))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ensureJars = %v, want context.DeadlineExceeded while another downloader holds the lock", err)
	}
	if f.calls.Load() != 0 {
		t.Error("fetch ran without the lock")
	}
}

func TestMavenPOM(t *testing.T) {
	var pom struct {
		Packaging string `xml:"packaging"`
		Managed   []struct {
			ArtifactID string `xml:"artifactId"`
			Version    string `xml:"version"`
			Scope      string `xml:"scope"`
		} `xml:"dependencyManagement>dependencies>dependency"`
		Deps []struct {
			GroupID    string `xml:"groupId"`
			ArtifactID string `xml:"artifactId"`
			Version    string `xml:"version"`
		} `xml:"dependencies>dependency"`
	}
	if err := xml.Unmarshal([]byte(mavenPOM("4.1.2")), &pom); err != nil {
		t.Fatalf("the pom is not XML: %v", err)
	}
	if pom.Packaging != "pom" {
		t.Errorf("packaging = %q, want pom (nothing to build)", pom.Packaging)
	}
	if len(pom.Managed) != 1 || pom.Managed[0].ArtifactID != "log4j-bom" || pom.Managed[0].Version != log4jVersion || pom.Managed[0].Scope != "import" {
		t.Errorf("dependencyManagement = %+v, want the log4j BOM %s imported", pom.Managed, log4jVersion)
	}
	deps := map[string]string{}
	for _, d := range pom.Deps {
		deps[d.GroupID+":"+d.ArtifactID] = d.Version
	}
	if v, ok := deps["org.apache.kafka:kafka_2.13"]; !ok || v != "4.1.2" {
		t.Errorf("kafka_2.13 dependency = %q (present %v), want 4.1.2", v, ok)
	}
	if _, ok := deps["org.apache.logging.log4j:log4j-slf4j-impl"]; !ok {
		t.Error("no log4j-slf4j-impl: Kafka's SLF4J logging would go nowhere")
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\n", 0, ""},
		{"", 3, ""},
	} {
		if got := lastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
