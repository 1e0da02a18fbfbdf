package kafkabroker

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.startTimeout != defaultStartTimeout || cfg.version != DefaultVersion || cfg.logger == nil {
		t.Errorf("defaults = %+v, want start timeout %v, version %s and a logger", cfg, defaultStartTimeout, DefaultVersion)
	}

	cfg, err = newConfig([]Option{WithStartTimeout(time.Second), WithVersion("4.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.startTimeout != time.Second || cfg.version != "4.0.1" {
		t.Errorf("options not applied: %+v", cfg)
	}

	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithStartTimeout(0), "WithStartTimeout"},
		{WithVersion("3.9.1"), "4.x"},
		{WithVersion("latest"), "MAJOR.MINOR.PATCH"},
	} {
		if _, err := newConfig([]Option{tc.opt}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newConfig = %v, want an error mentioning %q", err, tc.want)
		}
	}
}

func TestParseBrokerList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.1:9092", []string{"127.0.0.1:9092"}},
		{" a:1 , b:2,,", []string{"a:1", "b:2"}},
		{" , ", nil},
	} {
		if got := parseBrokerList(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("parseBrokerList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDockerProbeIsQuick(t *testing.T) {
	begin := time.Now()
	available := dockerAvailable(t.Context())
	if took := time.Since(begin); took > dockerProbeTimeout+time.Second {
		t.Errorf("dockerAvailable took %v; it must give up after %v", took, dockerProbeTimeout)
	}
	t.Logf("Docker engine available: %v", available)
}
