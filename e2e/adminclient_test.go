package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file reads an instance's admin endpoints (-admin-addr 127.0.0.1:0):
// where they listen, /metrics as samples, and the probes' status codes.

var adminAddrRE = regexp.MustCompile(`msg="admin endpoints listening" addr=(\S+)`)

// freeAddr returns a loopback host:port that was free a moment ago, for
// -admin-addr: a test that picks the port need not learn it from the log.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// adminAddr returns the host:port of the process's admin endpoints: the
// one the test chose, else the one the process logged.
func (p *proc) adminAddr() string {
	p.t.Helper()
	if p.admin != "" {
		return p.admin
	}
	p.waitFor(`msg="admin endpoints listening"`, 1, 30*time.Second)
	m := adminAddrRE.FindStringSubmatch(p.out.String())
	if m == nil {
		p.t.Fatalf("%s: cannot parse the admin address from its log", p.name)
	}
	return strings.Trim(m[1], `"`)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// get fetches path from the process's admin endpoints and returns the
// status code and body.
func (p *proc) get(path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + p.adminAddr() + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// status returns the status code of path, or 0 if the request failed.
func (p *proc) status(path string) int {
	code, _, err := p.get(path)
	if err != nil {
		return 0
	}
	return code
}

// sample is one sample of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is one scrape of /metrics.
type metricSet []sample

// sampleRE matches `name{labels} value` and `name value`; timestamps are
// not written by client_golang.
var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$`)

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseMetrics parses the Prometheus text format (version 0.0.4), which is
// what /metrics serves to a client that asks for nothing else.
func parseMetrics(r io.Reader) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("cannot parse metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// scrape reads the process's /metrics.
func (p *proc) scrape() (metricSet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.adminAddr()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// mustScrape is scrape that fails the test on error.
func (p *proc) mustScrape() metricSet {
	p.t.Helper()
	ms, err := p.scrape()
	if err != nil {
		p.t.Fatalf("%s: scrape /metrics: %v", p.name, err)
	}
	return ms
}

// matches reports whether s has every label of kv (name, value, name,
// value, ...).
func (s sample) matches(kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if s.labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// sum returns the sum of the samples of name that have the labels kv
// (name, value, ...), and whether there was any.
func (ms metricSet) sum(name string, kv ...string) (float64, bool) {
	var total float64
	found := false
	for _, s := range ms {
		if s.name == name && s.matches(kv) {
			total += s.value
			found = true
		}
	}
	return total, found
}

// byLabel returns the value of each sample of name that has the labels kv,
// keyed by its label key.
func (ms metricSet) byLabel(name, key string, kv ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ms {
		if s.name == name && s.matches(kv) {
			out[s.labels[key]] += s.value
		}
	}
	return out
}

// runningTasks returns how many active tasks the instance runs, by its
// eddy_tasks gauge, or -1 if it cannot be scraped.
func (p *proc) runningTasks() int {
	ms, err := p.scrape()
	if err != nil {
		return -1
	}
	n, _ := ms.sum("eddy_tasks", "state", "running")
	return int(n)
}

// processed returns the records the instance's tasks have processed, by
// eddy_task_records_processed_total (which counts only the tasks it holds
// now), or -1 if it cannot be scraped.
func (p *proc) processed() float64 {
	ms, err := p.scrape()
	if err != nil {
		return -1
	}
	n, _ := ms.sum("eddy_task_records_processed_total")
	return n
}

// waitUntil polls cond every 100ms until it holds or d passes, then fails
// the test with what describe says about the last state.
func waitUntil(t interface {
	Helper()
	Fatalf(string, ...any)
}, d time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, d, describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describeEach joins, for a failure message, what describe says of each
// process's metrics (or the error scraping them).
func describeEach(ps []*proc, describe func(*proc, metricSet) string) string {
	var parts []string
	for _, p := range ps {
		ms, err := p.scrape()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", p.name, err))
			continue
		}
		parts = append(parts, describe(p, ms))
	}
	return strings.Join(parts, "; ")
}
