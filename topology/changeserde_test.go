package topology

import (
	"bytes"
	"errors"
	"testing"

	"github.com/eddystream/eddy/serde"
)

// The repartition format of a table grouping is Kafka Streams'
// ChangedSerializer's: the value or values, then a flag byte; with both,
// a zig-zag varint of the new value's length first.
func TestChangeSerdeMatchesKafkaStreams(t *testing.T) {
	cs := changeSerde[string]{serde.String()}
	for _, tc := range []struct {
		name string
		c    change[string]
		want []byte
	}{
		{"new only", change[string]{value: "ab"}, []byte("ab\x01")},
		{"old only", change[string]{deleted: true, old: "xyz", hasOld: true}, []byte("xyz\x00")},
		{"both", change[string]{value: "ab", old: "c", hasOld: true}, []byte("\x04abc\x02")},
		{"both, empty new", change[string]{value: "", old: "c", hasOld: true}, []byte("\x00c\x02")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cs.Serialize("topic", tc.c)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Serialize = %q, %v; want %q", got, err, tc.want)
			}
			back, err := cs.Deserialize("topic", got)
			if err != nil || back != tc.c {
				t.Errorf("Deserialize = %+v, %v; want %+v", back, err, tc.c)
			}
		})
	}
	if _, err := cs.Serialize("topic", change[string]{deleted: true}); err == nil {
		t.Error("Serialize accepted a change with neither value")
	}
	for _, bad := range [][]byte{{}, []byte("x\x07"), []byte("\x10ab\x02"), []byte("\x01ab\x02")} {
		_, err := cs.Deserialize("topic", bad)
		var se *serde.Error
		if !errors.As(err, &se) {
			t.Errorf("Deserialize(%q) = %v, want a serde.Error", bad, err)
		}
	}
}
