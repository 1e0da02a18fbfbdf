package serde

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestInt64MatchesLongSerializer(t *testing.T) {
	s := Int64()
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{-1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{math.MaxInt64, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{258, []byte{0, 0, 0, 0, 0, 0, 1, 2}},
	} {
		b, err := s.Serialize("t", tc.v)
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Fatalf("Serialize(%d) = %x, %v; want %x", tc.v, b, err, tc.want)
		}
		got, err := s.Deserialize("t", b)
		if err != nil || got != tc.v {
			t.Fatalf("Deserialize(%x) = %d, %v", b, got, err)
		}
	}
}

func TestInt64RejectsWrongLength(t *testing.T) {
	_, err := Int64().Deserialize("counts", []byte{1, 2, 3})
	var se *Error
	if !errors.As(err, &se) || se.Topic != "counts" {
		t.Fatalf("want *Error naming the topic, got %v", err)
	}
}

func TestJSON(t *testing.T) {
	type point struct{ X, Y int }
	s := JSON[point]()
	b, err := s.Serialize("t", point{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Deserialize("t", b)
	if err != nil || p != (point{1, 2}) {
		t.Fatalf("round trip = %v, %v", p, err)
	}
	if _, err := s.Deserialize("t", []byte("{not json")); err == nil {
		t.Fatal("malformed JSON decoded without error")
	}
}

func TestStringAndBytes(t *testing.T) {
	b, _ := String().Serialize("t", "héllo")
	if s, _ := String().Deserialize("t", b); s != "héllo" {
		t.Fatalf("string round trip = %q", s)
	}
	in := []byte{1, 2}
	if out, _ := Bytes().Deserialize("t", in); &out[0] != &in[0] {
		t.Fatal("Bytes().Deserialize copied its input")
	}
	if out, _ := Bytes().Deserialize("t", nil); out != nil {
		t.Fatal("nil must stay nil")
	}
}

// TestNullContract checks the built-ins against Kafka's contract for null
// (a nil slice), as far as each type allows: null deserializes to the
// zero value without error, and empty data stays distinct from null.
func TestNullContract(t *testing.T) {
	if v, err := String().Deserialize("t", nil); err != nil || v != "" {
		t.Errorf("String().Deserialize(nil) = %q, %v; want \"\", nil", v, err)
	}
	if b, err := String().Serialize("t", ""); err != nil || b == nil || len(b) != 0 {
		t.Errorf("String().Serialize(\"\") = %#v, %v; want an empty, non-nil slice", b, err)
	}
	if v, err := Int64().Deserialize("t", nil); err != nil || v != 0 {
		t.Errorf("Int64().Deserialize(nil) = %d, %v; want 0, nil", v, err)
	}
	if _, err := Int64().Deserialize("t", []byte{}); err == nil {
		t.Error("Int64().Deserialize of empty data succeeded; empty is not null")
	}
	if b, err := Bytes().Serialize("t", nil); err != nil || b != nil {
		t.Errorf("Bytes().Serialize(nil) = %#v, %v; want nil", b, err)
	}
	if b, err := Bytes().Deserialize("t", []byte{}); err != nil || b == nil {
		t.Errorf("Bytes().Deserialize(empty) = %#v, %v; want empty, not nil", b, err)
	}

	type point struct{ X, Y int }
	if v, err := JSON[point]().Deserialize("t", nil); err != nil || v != (point{}) {
		t.Errorf("JSON[point]().Deserialize(nil) = %v, %v; want the zero point, nil", v, err)
	}
	if v, err := JSON[*point]().Deserialize("t", nil); err != nil || v != nil {
		t.Errorf("JSON[*point]().Deserialize(nil) = %v, %v; want nil, nil", v, err)
	}
	if _, err := JSON[point]().Deserialize("t", []byte{}); err == nil {
		t.Error("JSON().Deserialize of empty data succeeded; empty is not null")
	}
	// A nil pointer is the JSON text null, which a store keeps and reads
	// back as nil.
	b, err := JSON[*point]().Serialize("t", nil)
	if err != nil || string(b) != "null" {
		t.Fatalf("JSON[*point]().Serialize(nil) = %q, %v; want the text null", b, err)
	}
	if v, err := JSON[*point]().Deserialize("t", b); err != nil || v != nil {
		t.Errorf("JSON[*point]().Deserialize(null text) = %v, %v; want nil, nil", v, err)
	}
}
