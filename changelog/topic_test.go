package changelog

import "testing"

func TestTopicName(t *testing.T) {
	if got, want := TopicName("shop", "counts"), "shop-counts-changelog"; got != want {
		t.Fatalf("TopicName = %q, want %q", got, want)
	}
}

func TestTopicConfigs(t *testing.T) {
	got := TopicConfigs()
	want := map[string]string{"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}
	if len(got) != len(want) {
		t.Fatalf("TopicConfigs has %d entries, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] == nil || *got[k] != v {
			t.Errorf("TopicConfigs()[%q] = %v, want %q", k, got[k], v)
		}
	}
	// Each call returns a fresh map that the caller may change.
	got["retention.ms"] = nil
	*got["cleanup.policy"] = "delete"
	if again := TopicConfigs(); len(again) != 2 || *again["cleanup.policy"] != "compact" {
		t.Fatalf("changing one TopicConfigs result changed the next: %v", again)
	}
}

func TestTopicPartition(t *testing.T) {
	tp := TopicPartition{Topic: "a-b-changelog", Partition: 12}
	if got := tp.String(); got != "a-b-changelog-12" {
		t.Errorf("String = %q", got)
	}
	ordered := []TopicPartition{{"a", 2}, {"a", 10}, {"b", 0}}
	for i := range ordered {
		for j := range ordered {
			if got, want := ordered[i].Less(ordered[j]), i < j; got != want {
				t.Errorf("%v.Less(%v) = %v, want %v", ordered[i], ordered[j], got, want)
			}
		}
	}
}
