package kafkabroker

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultVersion is the Apache Kafka release that Start runs unless told
// otherwise with [WithVersion]. It is the latest 4.x release that Maven
// Central serves (org.apache.kafka:kafka_2.13, maven-metadata.xml <release>)
// as of November 2026. The same version names the apache/kafka Docker image
// tag. Bump it together with log4jVersion (the log4j release that this Kafka
// version's kafka-server artifact depends on).
const DefaultVersion = "4.4.0"

// log4jVersion pins every log4j artifact on the broker's class path (through
// the log4j BOM) to the release Kafka DefaultVersion was built with, and names
// the SLF4J 1.x binding (log4j-slf4j-impl) that routes Kafka's SLF4J logging
// into log4j 2. Kafka 4.x logs through SLF4J 1.7 and ships log4j 2 as its
// backend; the binding is not a Maven dependency of kafka_2.13, so it is
// requested explicitly.
const log4jVersion = "2.25.5"

// kafkaVersion is a parsed Apache Kafka release number.
type kafkaVersion struct {
	major, minor, patch int
}

// parseVersion parses a release number such as "4.4.0" and checks that this
// package knows how to run it: only 4.x releases, which run in KRaft mode
// only, log through log4j 2, and need Java 17.
func parseVersion(s string) (kafkaVersion, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return kafkaVersion{}, fmt.Errorf("kafkabroker: Kafka version %q is not of the form MAJOR.MINOR.PATCH (e.g. %q)", s, DefaultVersion)
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return kafkaVersion{}, fmt.Errorf("kafkabroker: Kafka version %q is not of the form MAJOR.MINOR.PATCH (e.g. %q)", s, DefaultVersion)
		}
		nums[i] = n
	}
	v := kafkaVersion{major: nums[0], minor: nums[1], patch: nums[2]}
	if v.major != 4 {
		return kafkaVersion{}, fmt.Errorf("kafkabroker: Kafka version %q is not supported: use a 4.x release such as %q", s, DefaultVersion)
	}
	return v, nil
}
