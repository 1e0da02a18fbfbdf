package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddystream/eddy/admin"
)

// fakeHealth is a Health whose answers a test sets.
type fakeHealth struct {
	mu           sync.Mutex
	alive, ready error
}

func (h *fakeHealth) set(alive, ready error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.alive, h.ready = alive, ready
}

func (h *fakeHealth) Alive() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.alive
}

func (h *fakeHealth) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

var quiet = slog.New(slog.DiscardHandler)

// client keeps no idle connections, whose goroutines goleak would report.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func start(t *testing.T, g prometheus.Gatherer, h admin.Health) *admin.Server {
	t.Helper()
	srv, err := admin.New("127.0.0.1:0", g, h, quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func get(t *testing.T, srv *admin.Server, path string) (int, string) {
	t.Helper()
	resp, err := client.Get("http://" + srv.Addr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read the body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func TestProbesFollowHealth(t *testing.T) {
	h := &fakeHealth{}
	srv := start(t, prometheus.NewRegistry(), h)
	steps := []struct {
		name         string
		alive, ready error
		healthzCode  int
		healthzBody  string
		readyzCode   int
		readyzBody   string
	}{
		{"running and ready", nil, nil, 200, "ok\n", 200, "ok\n"},
		{"restoring", nil, errors.New("3 active tasks restoring"), 200, "ok\n", 503, "3 active tasks restoring\n"},
		{"ready again", nil, nil, 200, "ok\n", 200, "ok\n"},
		{"failed", errors.New("worker 0 failed: fenced"), errors.New("stopped"), 503, "worker 0 failed: fenced\n", 503, "stopped\n"},
	}
	for _, step := range steps {
		h.set(step.alive, step.ready)
		if code, body := get(t, srv, "/healthz"); code != step.healthzCode || body != step.healthzBody {
			t.Errorf("%s: /healthz = %d %q, want %d %q", step.name, code, body, step.healthzCode, step.healthzBody)
		}
		if code, body := get(t, srv, "/readyz"); code != step.readyzCode || body != step.readyzBody {
			t.Errorf("%s: /readyz = %d %q, want %d %q", step.name, code, body, step.readyzCode, step.readyzBody)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_events_total", Help: "Events."})
	reg.MustRegister(c)
	c.Add(3)
	srv := start(t, reg, &fakeHealth{})
	code, body := get(t, srv, "/metrics")
	if code != 200 || !strings.Contains(body, "\ntest_events_total 3\n") {
		t.Errorf("/metrics = %d %q, want 200 with test_events_total 3", code, body)
	}
}

func TestIndex(t *testing.T) {
	srv := start(t, prometheus.NewRegistry(), &fakeHealth{})
	code, body := get(t, srv, "/")
	if code != 200 {
		t.Errorf("/ = %d, want 200", code)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if !strings.Contains(body, path) {
			t.Errorf("/ does not list %s: %q", path, body)
		}
	}
	if code, _ := get(t, srv, "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}

func TestBadAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, addr := range []string{"no-port", "127.0.0.1:99999", taken.Addr().String()} {
		srv, err := admin.New(addr, prometheus.NewRegistry(), &fakeHealth{}, quiet)
		if err == nil {
			_ = srv.Close(context.Background())
			t.Errorf("New(%q) succeeded", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "host:port") {
			t.Errorf("New(%q): error %q names neither the address nor its form", addr, err)
		}
	}
}

func TestNilArguments(t *testing.T) {
	if _, err := admin.New("127.0.0.1:0", nil, &fakeHealth{}, quiet); err == nil {
		t.Error("New with a nil Gatherer succeeded")
	}
	if _, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), nil, quiet); err == nil {
		t.Error("New with a nil Health succeeded")
	}
}

func TestCloseStopsServing(t *testing.T) {
	srv, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), &fakeHealth{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := client.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Error("the server answered after Close")
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// blockingHealth is a Health whose Ready waits until release is closed.
type blockingHealth struct {
	entered, release chan struct{}
}

func (h blockingHealth) Alive() error { return nil }
func (h blockingHealth) Ready() error {
	close(h.entered)
	<-h.release
	return nil
}

func TestCloseCutsRequestsAtDeadline(t *testing.T) {
	h := blockingHealth{entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), h, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, err := client.Get("http://" + srv.Addr() + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
	})
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a request in flight past the deadline = %v, want DeadlineExceeded", err)
	}
	// The handler goroutine is the application's to release; then nothing
	// of the server's is left.
	close(h.release)
	wg.Wait()
}
