package changelog

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleCheckpoint() Checkpoint {
	return Checkpoint{
		{Topic: "shop-totals-changelog", Partition: 3}:  17,
		{Topic: "shop-counts-changelog", Partition: 3}:  1042,
		{Topic: "shop-counts-changelog", Partition: 12}: 0,
	}
}

// seal appends the checksum line to body, making a file that passes the
// checksum whatever body holds, so that the checks behind it are reached.
func seal(body string) []byte {
	return appendChecksumLine([]byte(body))
}

func TestCheckpointRoundTrip(t *testing.T) {
	for name, cp := range map[string]Checkpoint{
		"sample": sampleCheckpoint(),
		"empty":  {},
		"nil":    nil,
		"extremes": {
			{Topic: strings.Repeat("x", 249), Partition: math.MaxInt32}: math.MaxInt64,
			{Topic: "a", Partition: 0}:                                  0,
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".checkpoint")
			if err := WriteCheckpoint(path, cp); err != nil {
				t.Fatal(err)
			}
			got, err := ReadCheckpoint(path)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !maps.Equal(got, cp) {
				t.Fatalf("read %v, wrote %v", got, cp)
			}
		})
	}
}

func TestCheckpointEncoding(t *testing.T) {
	data, err := encodeCheckpoint(sampleCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by topic, then partition number (not its text).
	wantBody := "eddy-checkpoint v1\n" +
		"entries 3\n" +
		"shop-counts-changelog 3 1042\n" +
		"shop-counts-changelog 12 0\n" +
		"shop-totals-changelog 3 17\n"
	if want := seal(wantBody); !bytes.Equal(data, want) {
		t.Fatalf("encoding:\n%s\nwant:\n%s", data, want)
	}
}

func TestWriteCheckpointReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".checkpoint")
	if err := WriteCheckpoint(path, sampleCheckpoint()); err != nil {
		t.Fatal(err)
	}
	next := Checkpoint{{Topic: "shop-counts-changelog", Partition: 3}: 2000}
	if err := WriteCheckpoint(path, next); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, next) {
		t.Fatalf("read %v, want %v", got, next)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %v; want only the checkpoint, no temporary files", entries)
	}
}

func TestWriteCheckpointRejectsInvalid(t *testing.T) {
	for name, cp := range map[string]Checkpoint{
		"negative offset":    {{Topic: "t", Partition: 0}: -1},
		"negative partition": {{Topic: "t", Partition: -1}: 5},
		"empty topic":        {{Topic: "", Partition: 0}: 5},
		"space in topic":     {{Topic: "a b", Partition: 0}: 5},
		"newline in topic":   {{Topic: "a\nb", Partition: 0}: 5},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ".checkpoint")
			old := Checkpoint{{Topic: "t", Partition: 0}: 7}
			if err := WriteCheckpoint(path, old); err != nil {
				t.Fatal(err)
			}
			if err := WriteCheckpoint(path, cp); err == nil {
				t.Fatalf("WriteCheckpoint(%v) succeeded", cp)
			}
			got, err := ReadCheckpoint(path)
			if err != nil || !maps.Equal(got, old) {
				t.Fatalf("after a rejected write, read %v, %v; want the old checkpoint %v", got, err, old)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("directory holds %v; want only the checkpoint", entries)
			}
		})
	}
}

func TestWriteCheckpointMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", ".checkpoint")
	if err := WriteCheckpoint(path, sampleCheckpoint()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteCheckpoint into a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func TestReadCheckpointMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".checkpoint")
	cp, err := ReadCheckpoint(path)
	if !errors.Is(err, fs.ErrNotExist) || cp != nil {
		t.Fatalf("ReadCheckpoint of a missing file = %v, %v; want nil, fs.ErrNotExist", cp, err)
	}
	if errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("a missing file is not a corrupt one: %v", err)
	}
}

func TestDeleteCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".checkpoint")
	if err := DeleteCheckpoint(path); err != nil {
		t.Fatalf("deleting a missing checkpoint: %v", err)
	}
	if err := WriteCheckpoint(path, sampleCheckpoint()); err != nil {
		t.Fatal(err)
	}
	if err := DeleteCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpoint(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after DeleteCheckpoint, ReadCheckpoint: %v; want fs.ErrNotExist", err)
	}
}

// readCorrupt writes data to a file and checks that ReadCheckpoint rejects
// it as corrupt, naming the file, and with an explanation containing want.
func readCorrupt(t *testing.T, data []byte, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".checkpoint")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpoint(path)
	if err == nil {
		t.Fatalf("ReadCheckpoint accepted %q as %v", data, cp)
	}
	if !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("error %q does not match ErrCorruptCheckpoint", err)
	}
	msg := err.Error()
	for _, part := range []string{path, want, "restored in full"} {
		if !strings.Contains(msg, part) {
			t.Fatalf("error %q does not mention %q", msg, part)
		}
	}
}

func TestReadCheckpointCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string // part of the explanation
	}{
		{"empty", nil, "empty"},
		{"foreign file", []byte(`{"offsets": {}}` + "\n"), "not an eddy checkpoint"},
		{"kafka streams checkpoint", []byte("0\n1\nshop-counts-changelog 3 1042\n"), "not an eddy checkpoint"},
		{"newer version", seal("eddy-checkpoint v2\nentries 0\n"), "unsupported format"},
		{"no version", seal("eddy-checkpoint \nentries 0\n"), "unsupported format"},
		{"header only", []byte("eddy-checkpoint v1\n"), "checksum line is missing"},
		{"no final newline", []byte("eddy-checkpoint v1"), "newline"},
		{"no count line", seal("eddy-checkpoint v1\n"), "entry count line is missing"},
		{"bad count line", seal("eddy-checkpoint v1\ncount 0\n"), "entries <count>"},
		{"count not a number", seal("eddy-checkpoint v1\nentries x\n"), "entry count"},
		{"count with sign", seal("eddy-checkpoint v1\nentries +0\n"), "entry count"},
		{"fewer entries than counted", seal("eddy-checkpoint v1\nentries 2\nt 0 1\n"), "1 entries but its header says 2"},
		{"more entries than counted", seal("eddy-checkpoint v1\nentries 0\nt 0 1\n"), "1 entries but its header says 0"},
		{"duplicate entry", seal("eddy-checkpoint v1\nentries 2\nt 0 1\nt 0 1\n"), "duplicate entry for t-0"},
		{"duplicate partition, other offset", seal("eddy-checkpoint v1\nentries 2\nt 0 1\nt 0 9\n"), "duplicate entry for t-0"},
		{"out of order", seal("eddy-checkpoint v1\nentries 2\nt 1 1\nt 0 1\n"), "out of order"},
		{"negative offset", seal("eddy-checkpoint v1\nentries 1\nt 0 -5\n"), "negative"},
		{"negative partition", seal("eddy-checkpoint v1\nentries 1\nt -1 5\n"), "partition"},
		{"partition overflows int32", seal("eddy-checkpoint v1\nentries 1\nt 2147483648 5\n"), "partition"},
		{"offset overflows int64", seal("eddy-checkpoint v1\nentries 1\nt 0 9223372036854775808\n"), "offset"},
		{"leading zero", seal("eddy-checkpoint v1\nentries 1\nt 0 05\n"), "offset"},
		{"two spaces", seal("eddy-checkpoint v1\nentries 1\nt  0 5\n"), "<topic> <partition> <offset>"},
		{"missing offset", seal("eddy-checkpoint v1\nentries 1\nt 0\n"), "<topic> <partition> <offset>"},
		{"bad topic", seal("eddy-checkpoint v1\nentries 1\nt/x 0 5\n"), "character outside"},
		{"blank line", seal("eddy-checkpoint v1\nentries 0\n\n"), "1 entries"},
		{"garbage checksum", []byte("eddy-checkpoint v1\nentries 0\ncrc32c zzzzzzzz\n"), "not a checksum line"},
		{"wrong checksum", []byte("eddy-checkpoint v1\nentries 0\ncrc32c 00000000\n"), "checksum mismatch"},
		{"trailing garbage", append(seal("eddy-checkpoint v1\nentries 0\n"), "x\n"...), "not a checksum line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readCorrupt(t, tc.data, tc.want)
		})
	}
}

// TestReadCheckpointUppercaseChecksum checks that the checksum's hex digits
// must be lowercase: 'a' and 'A' differ in one bit, so accepting both would
// let a bit flip through.
func TestReadCheckpointUppercaseChecksum(t *testing.T) {
	tp := TopicPartition{Topic: "t", Partition: 0}
	for offset := int64(0); ; offset++ {
		data, err := encodeCheckpoint(Checkpoint{tp: offset})
		if err != nil {
			t.Fatal(err)
		}
		sumAt := len(data) - checkpointSumDigits - 1
		sum := data[sumAt : len(data)-1]
		if !bytes.ContainsAny(sum, "abcdef") {
			continue
		}
		upper := append(bytes.Clone(data[:sumAt]), bytes.ToUpper(sum)...)
		readCorrupt(t, append(upper, '\n'), "not a checksum line")
		return
	}
}

func TestReadCheckpointTruncated(t *testing.T) {
	data, err := encodeCheckpoint(sampleCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := decodeCheckpoint(data[:n]); err == nil {
			t.Fatalf("a checkpoint truncated to %d of %d bytes was accepted: %q", n, len(data), data[:n])
		}
	}
	readCorrupt(t, data[:len(data)/2], "")
}

func TestReadCheckpointBitFlips(t *testing.T) {
	data, err := encodeCheckpoint(sampleCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		for bit := range 8 {
			flipped := bytes.Clone(data)
			flipped[i] ^= 1 << bit
			if cp, err := decodeCheckpoint(flipped); err == nil {
				t.Fatalf("flipping bit %d of byte %d (%q) went undetected: read %v", bit, i, data[i], cp)
			}
		}
	}
}

// FuzzReadCheckpoint checks that decoding never panics, that every input it
// accepts is the one encoding of what it decodes to, and that it rejects
// inputs as corrupt only. Each input is tried as it is and, so that the
// fuzzer reaches the checks behind the checksum, with its last line
// replaced by a valid checksum line.
func FuzzReadCheckpoint(f *testing.F) {
	for _, cp := range []Checkpoint{sampleCheckpoint(), {}, {{Topic: "t", Partition: 0}: 1}} {
		data, err := encodeCheckpoint(cp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("eddy-checkpoint v1\nentries 2\nt 0 1\nt 0 1\ncrc32c 00000000\n"))
	f.Add([]byte("eddy-checkpoint v1\nentries 1\nt 0 -1\ncrc32c 00000000\n"))
	f.Add([]byte("eddy-checkpoint v2\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		resealed := data
		if i := bytes.LastIndexByte(bytes.TrimSuffix(data, []byte("\n")), '\n'); i >= 0 {
			resealed = appendChecksumLine(bytes.Clone(data[:i+1]))
		}
		for _, in := range [][]byte{data, resealed} {
			cp, err := decodeCheckpoint(in)
			if err != nil {
				continue
			}
			out, err := encodeCheckpoint(cp)
			if err != nil {
				t.Fatalf("decoded %q to %v, which does not encode: %v", in, cp, err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("decoded %q to %v, which encodes to %q", in, cp, out)
			}
		}
	})
}

func TestValidTopic(t *testing.T) {
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'a'
	}
	for name, ok := range map[string]bool{
		"app-store-changelog": true,
		"A.b_c-9":             true,
		string(long[:249]):    true,
		string(long):          false,
		"":                    false,
		"has space":           false,
		"tab\t":               false,
		"slash/":              false,
		"ünicode":             false,
	} {
		if got := validTopic(name) == ""; got != ok {
			t.Errorf("validTopic(%q) ok = %v, want %v (%s)", name, got, ok, validTopic(name))
		}
	}
}
