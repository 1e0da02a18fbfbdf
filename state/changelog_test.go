package state_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/state"
)

func TestChangelogConfigTopicConfigs(t *testing.T) {
	tests := []struct {
		name    string
		c       state.ChangelogConfig
		want    map[string]string
		wantErr string // a part of the error; "" for none
	}{
		{name: "zero is compact", want: map[string]string{"cleanup.policy": "compact"}},
		{name: "compact", c: state.ChangelogConfig{CleanupPolicy: "compact"}, want: map[string]string{"cleanup.policy": "compact"}},
		{
			name: "compact,delete with retention",
			c:    state.ChangelogConfig{CleanupPolicy: "delete, compact", Retention: 36 * time.Hour},
			want: map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "129600000"},
		},
		{
			name: "compact,delete without retention",
			c:    state.ChangelogConfig{CleanupPolicy: "compact,delete"},
			want: map[string]string{"cleanup.policy": "compact,delete"},
		},
		{
			name: "extra configs",
			c:    state.ChangelogConfig{Configs: map[string]string{"min.insync.replicas": "2", "segment.ms": "600000"}},
			want: map[string]string{"cleanup.policy": "compact", "min.insync.replicas": "2", "segment.ms": "600000"},
		},
		{name: "delete alone", c: state.ChangelogConfig{CleanupPolicy: "delete"}, wantErr: `cleanup policy "delete" drops the latest value`},
		{name: "unknown policy", c: state.ChangelogConfig{CleanupPolicy: "compacted"}, wantErr: `want "compact", "delete" or "compact,delete"`},
		{name: "policy twice", c: state.ChangelogConfig{CleanupPolicy: "compact,compact"}, wantErr: "want"},
		{name: "empty part", c: state.ChangelogConfig{CleanupPolicy: "compact,"}, wantErr: "want"},
		{name: "retention without delete", c: state.ChangelogConfig{Retention: time.Hour}, wantErr: "has no effect without \"delete\""},
		{name: "negative retention", c: state.ChangelogConfig{CleanupPolicy: "compact,delete", Retention: -time.Hour}, wantErr: "negative"},
		{name: "sub-millisecond retention", c: state.ChangelogConfig{CleanupPolicy: "compact,delete", Retention: time.Hour + time.Microsecond}, wantErr: "whole number of milliseconds"},
		{name: "policy in Configs", c: state.ChangelogConfig{Configs: map[string]string{"cleanup.policy": "delete"}}, wantErr: "set CleanupPolicy instead"},
		{name: "retention in Configs", c: state.ChangelogConfig{Configs: map[string]string{"retention.ms": "1"}}, wantErr: "set Retention instead"},
		{name: "timestamp type in Configs", c: state.ChangelogConfig{Configs: map[string]string{"message.timestamp.type": "LogAppendTime"}}, wantErr: "CreateTime"},
		{name: "empty config name", c: state.ChangelogConfig{Configs: map[string]string{"": "x"}}, wantErr: "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.TopicConfigs(state.KindKeyValue)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TopicConfigs = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TopicConfigs: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("TopicConfigs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangelogConfigTopicConfigsIsACopy(t *testing.T) {
	extra := map[string]string{"segment.ms": "1"}
	c := state.ChangelogConfig{Configs: extra}
	got, err := c.TopicConfigs(state.KindKeyValue)
	if err != nil {
		t.Fatal(err)
	}
	got["segment.ms"] = "2"
	if extra["segment.ms"] != "1" || len(extra) != 1 {
		t.Errorf("changing the result changed the config's map: %v", extra)
	}
}

func TestChangelogConfigUnknownKind(t *testing.T) {
	if _, err := (state.ChangelogConfig{}).TopicConfigs(state.StoreKind(0)); err == nil {
		t.Error("TopicConfigs accepted a store kind that does not exist")
	}
}

// Window and session changelogs default to "compact,delete": their records
// expire with the store's retention.
func TestChangelogConfigWindowedDefaults(t *testing.T) {
	for _, kind := range []state.StoreKind{state.KindWindow, state.KindSession} {
		got, err := (state.ChangelogConfig{Retention: 25 * time.Hour}).TopicConfigs(kind)
		if err != nil {
			t.Fatalf("%v: %v", kind, err)
		}
		if got["cleanup.policy"] != "compact,delete" || got["retention.ms"] != "90000000" {
			t.Errorf("%v store: configs %v, want compact,delete with retention.ms 90000000", kind, got)
		}
		if _, err := (state.ChangelogConfig{CleanupPolicy: "delete"}).TopicConfigs(kind); err == nil {
			t.Errorf("%v store: a changelog without compact was accepted", kind)
		}
	}
}
