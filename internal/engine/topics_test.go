package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/state"
)

func TestChangelogTopicConfigs(t *testing.T) {
	got, err := changelogTopicConfigs(task.StoreSpec{
		Name: "s", Kind: state.KindKeyValue, ChangelogTopic: "app-s-changelog",
		Changelog: state.ChangelogConfig{CleanupPolicy: "compact,delete", Retention: time.Minute, Configs: map[string]string{"segment.ms": "1000"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cleanup.policy":         "compact,delete",
		"retention.ms":           "60000",
		"segment.ms":             "1000",
		"message.timestamp.type": "CreateTime",
	}
	if len(got) != len(want) {
		t.Errorf("got %d configs, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] == nil || *got[k] != v {
			t.Errorf("%s = %v, want %q", k, got[k], v)
		}
	}

	_, err = changelogTopicConfigs(task.StoreSpec{Name: "s", Kind: state.KindKeyValue, Changelog: state.ChangelogConfig{CleanupPolicy: "delete"}})
	if err == nil || !strings.Contains(err.Error(), `store "s"`) {
		t.Errorf("a key-value store with policy delete: err = %v, want an error naming the store", err)
	}
}
