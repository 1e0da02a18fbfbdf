package kafkabroker

import (
	"encoding/xml"
	"fmt"
	"os"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kafkaVersion
		ok   bool
	}{
		{"4.4.0", kafkaVersion{4, 4, 0}, true},
		{"4.0.1", kafkaVersion{4, 0, 1}, true},
		{"4.10.12", kafkaVersion{4, 10, 12}, true},
		{"3.9.1", kafkaVersion{}, false}, // ZooKeeper era, log4j 1
		{"5.0.0", kafkaVersion{}, false},
		{"4.4", kafkaVersion{}, false},
		{"4.4.0-rc1", kafkaVersion{}, false},
		{"4.04.0", kafkaVersion{}, false},
		{"v4.4.0", kafkaVersion{}, false},
		{"", kafkaVersion{}, false},
	} {
		got, err := parseVersion(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseVersion(%q) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, err := parseVersion(DefaultVersion); err != nil {
		t.Errorf("DefaultVersion %q does not parse: %v", DefaultVersion, err)
	}
}

// latestKafka4 returns the newest 4.x release listed in a Maven
// maven-metadata.xml document.
func latestKafka4(metadata []byte) (string, error) {
	var doc struct {
		Versions []string `xml:"versioning>versions>version"`
	}
	if err := xml.Unmarshal(metadata, &doc); err != nil {
		return "", fmt.Errorf("parse maven-metadata.xml: %w", err)
	}
	var best kafkaVersion
	found := ""
	for _, s := range doc.Versions {
		v, err := parseVersion(s)
		if err != nil {
			continue // other majors, pre-releases
		}
		if found == "" || v.minor > best.minor || (v.minor == best.minor && v.patch > best.patch) {
			best, found = v, s
		}
	}
	if found == "" {
		return "", fmt.Errorf("maven-metadata.xml lists no 4.x release")
	}
	return found, nil
}

func TestLatestKafka4(t *testing.T) {
	const metadata = `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.apache.kafka</groupId>
  <artifactId>kafka_2.13</artifactId>
  <versioning>
    <latest>5.0.0</latest>
    <release>5.0.0</release>
    <versions>
      <version>3.9.1</version>
      <version>4.0.0</version>
      <version>4.10.0</version>
      <version>4.9.3</version>
      <version>4.10.1</version>
      <version>4.11.0-rc0</version>
      <version>5.0.0</version>
    </versions>
  </versioning>
</metadata>`
	got, err := latestKafka4([]byte(metadata))
	if err != nil || got != "4.10.1" {
		t.Fatalf("latestKafka4 = %q, %v; want 4.10.1", got, err)
	}
	if _, err := latestKafka4([]byte(`<metadata><versioning><versions><version>3.9.0</version></versions></versioning></metadata>`)); err == nil {
		t.Fatal("latestKafka4 found a 4.x release in a list without one")
	}
	if _, err := latestKafka4([]byte("not xml")); err == nil {
		t.Fatal("latestKafka4 accepted a document that is not XML")
	}
}

// TestDefaultVersionIsLatest tells a maintainer when DefaultVersion is behind
// Maven Central. It runs only when EDDY_KAFKA_METADATA names a copy of
// org/apache/kafka/kafka_2.13/maven-metadata.xml from Maven Central, so
// that the test suite itself never needs the network.
func TestDefaultVersionIsLatest(t *testing.T) {
	path := os.Getenv("EDDY_KAFKA_METADATA")
	if path == "" {
		t.Skip("set EDDY_KAFKA_METADATA to a downloaded kafka_2.13 maven-metadata.xml to check DefaultVersion")
	}
	metadata, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := latestKafka4(metadata)
	if err != nil {
		t.Fatal(err)
	}
	if latest != DefaultVersion {
		t.Errorf("DefaultVersion is %s but Maven Central has %s: bump it (and log4jVersion to what kafka-server %s depends on)", DefaultVersion, latest, latest)
	}
}
