package processor_test

import (
	"testing"

	"github.com/eddystream/eddy/processor"
)

func TestKeyIsNullAndValueIsNull(t *testing.T) {
	type point struct{ X int }
	var nilErr error
	for _, tc := range []struct {
		name string
		null bool
		test func() bool
	}{
		{"string key", false, processor.Record[string, int]{}.KeyIsNull},
		{"string key marked null", true, processor.Record[string, int]{NullKey: true}.KeyIsNull},
		{"int value", false, processor.Record[string, int]{}.ValueIsNull},
		{"int value marked null", true, processor.Record[string, int]{NullValue: true}.ValueIsNull},
		{"nil bytes", true, processor.Record[[]byte, []byte]{}.KeyIsNull},
		{"empty bytes", false, processor.Record[[]byte, []byte]{Key: []byte{}}.KeyIsNull},
		{"nil pointer", true, processor.Record[string, *point]{}.ValueIsNull},
		{"pointer", false, processor.Record[string, *point]{Value: &point{}}.ValueIsNull},
		{"struct", false, processor.Record[point, point]{}.KeyIsNull},
		{"nil map", true, processor.Record[string, map[string]int]{}.ValueIsNull},
		{"nil interface", true, processor.Record[error, string]{Key: nilErr}.KeyIsNull},
		{"any holding a nil-free value", false, processor.Record[any, string]{Key: 0}.KeyIsNull},
	} {
		if got := tc.test(); got != tc.null {
			t.Errorf("%s: null = %v, want %v", tc.name, got, tc.null)
		}
	}
}

func BenchmarkKeyIsNull(b *testing.B) {
	for _, bc := range []struct {
		name string
		test func() bool
	}{
		{"string", processor.Record[string, string]{Key: "k"}.KeyIsNull},
		{"bytes", processor.Record[[]byte, string]{Key: []byte("k")}.KeyIsNull},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.test() {
					b.Fatal("null")
				}
			}
		})
	}
}
