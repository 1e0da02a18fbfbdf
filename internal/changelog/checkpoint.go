package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Checkpoint maps changelog partitions to the next offset to restore each
// from: one past the last changelog offset the local store reflects. A
// store restored up to end offset E is checkpointed at E.
type Checkpoint map[TopicPartition]int64

const (
	checkpointHeader    = "eddy-checkpoint v1"
	checkpointMagic     = "eddy-checkpoint "
	checkpointCountKey  = "entries "
	checkpointSumKey    = "crc32c "
	checkpointSumDigits = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteCheckpoint replaces the checkpoint file at path with cp, atomically
// and durably: it writes a temporary file in the same directory, syncs it,
// renames it over path and syncs the directory. After a crash at any point
// path holds either the old checkpoint or the new one, never a mix. The
// directory must exist.
//
// Every offset must be at least zero and every topic a legal Kafka topic
// name, or WriteCheckpoint fails without touching path.
//
// The file is text, so that an operator can read it:
//
//	eddy-checkpoint v1
//	entries 2
//	shop-counts-changelog 3 1042
//	shop-totals-changelog 3 17
//	crc32c 8c2f7c15
//
// One line per partition, "<topic> <partition> <offset>", sorted by topic
// and partition; the last line is the CRC-32C (Castagnoli) of every byte
// before it, in eight lowercase hex digits. Every line ends in "\n". Each
// checkpoint has exactly one encoding, so ReadCheckpoint rejects anything
// else, and truncation or a flipped bit anywhere is detected.
func WriteCheckpoint(path string, cp Checkpoint) (err error) {
	data, err := encodeCheckpoint(cp)
	if err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = f.Close() // may already be closed; the write error matters
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("changelog: write checkpoint %s: the file is in place but may not survive a crash: %w", path, err)
	}
	return nil
}

// ReadCheckpoint reads the checkpoint file at path.
//
// A missing file returns an error matching fs.ErrNotExist: the task has no
// checkpoint, and its stores are restored in full. A file that is not a
// valid checkpoint returns an error matching ErrCorruptCheckpoint that names
// the path and the problem. Other errors, such as a permission denied, are
// returned as they are: wiping the stores would not fix them.
func ReadCheckpoint(path string) (Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("changelog: read checkpoint: %w", err)
	}
	cp, err := decodeCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("changelog: checkpoint %s: %w: %v; it is not trusted, so the task's stores will be wiped and restored in full from their changelogs", path, ErrCorruptCheckpoint, err)
	}
	return cp, nil
}

// DeleteCheckpoint removes the checkpoint file at path and syncs its
// directory, so that the removal survives a crash. A missing file is not an
// error.
//
// Delete a task's checkpoint before its stores move past the checkpointed
// offsets (under exactly-once, when the task starts processing): after a
// crash, a checkpoint older than the stores would make a restore apply
// changelog records on top of newer state.
func DeleteCheckpoint(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("changelog: delete checkpoint: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("changelog: delete checkpoint %s: the file is gone but may reappear after a crash: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close() // the sync error matters
		return err
	}
	return d.Close()
}

// encodeCheckpoint returns the one encoding of cp described on
// WriteCheckpoint.
func encodeCheckpoint(cp Checkpoint) ([]byte, error) {
	tps := make([]TopicPartition, 0, len(cp))
	for tp, offset := range cp {
		if why := validTopic(tp.Topic); why != "" {
			return nil, fmt.Errorf("entry %s: %s", tp, why)
		}
		if tp.Partition < 0 {
			return nil, fmt.Errorf("entry %s: partition is negative", tp)
		}
		if offset < 0 {
			return nil, fmt.Errorf("entry %s: offset %d is negative; a checkpoint holds the next offset to restore from", tp, offset)
		}
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTopicPartitions)

	b := make([]byte, 0, 64+len(tps)*64)
	b = append(b, checkpointHeader+"\n"+checkpointCountKey...)
	b = strconv.AppendInt(b, int64(len(tps)), 10)
	b = append(b, '\n')
	for _, tp := range tps {
		b = append(b, tp.Topic...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(tp.Partition), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, cp[tp], 10)
		b = append(b, '\n')
	}
	return appendChecksumLine(b), nil
}

// appendChecksumLine appends the trailer line that seals signed.
func appendChecksumLine(signed []byte) []byte {
	return fmt.Appendf(signed, "%s%08x\n", checkpointSumKey, crc32.Checksum(signed, castagnoli))
}

func compareTopicPartitions(a, b TopicPartition) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// decodeCheckpoint parses the encoding described on WriteCheckpoint and
// accepts nothing else. Its errors say what is wrong, for a human.
func decodeCheckpoint(data []byte) (Checkpoint, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	header, _, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.HasPrefix(header, []byte(checkpointMagic)) {
		return nil, fmt.Errorf("not an eddy checkpoint file: it starts with %q", clip(header))
	}
	if string(header) != checkpointHeader {
		return nil, fmt.Errorf("unsupported format %q: this build of eddy reads %q", clip(header), checkpointHeader)
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("the file does not end in a newline (truncated)")
	}

	// The trailer is the last line; it seals every byte before it.
	lastNL := bytes.LastIndexByte(data[:len(data)-1], '\n')
	signed, trailer := data[:lastNL+1], data[lastNL+1:len(data)-1]
	if len(signed) <= len(header) {
		return nil, errors.New("the checksum line is missing (truncated)")
	}
	sum, ok := parseChecksumLine(trailer)
	if !ok {
		return nil, fmt.Errorf("the last line %q is not a checksum line \"crc32c <8 lowercase hex digits>\" (truncated or damaged)", clip(trailer))
	}
	if got := crc32.Checksum(signed, castagnoli); got != sum {
		return nil, fmt.Errorf("checksum mismatch: the file says %08x but its contents hash to %08x (damaged)", sum, got)
	}

	body := signed[len(header)+1:]
	if len(body) == 0 {
		return nil, errors.New("the entry count line is missing")
	}
	lines := bytes.Split(body[:len(body)-1], []byte("\n"))
	count, ok := bytes.CutPrefix(lines[0], []byte(checkpointCountKey))
	if !ok {
		return nil, fmt.Errorf("the second line %q is not \"entries <count>\"", clip(lines[0]))
	}
	n, ok := parseCanonicalInt(count, 63)
	if !ok || n < 0 {
		return nil, fmt.Errorf("the entry count %q is not a non-negative decimal number", clip(count))
	}
	entries := lines[1:]
	if int64(len(entries)) != n {
		return nil, fmt.Errorf("the file has %d entries but its header says %d", len(entries), n)
	}

	cp := make(Checkpoint, len(entries))
	var prev TopicPartition
	for i, line := range entries {
		tp, offset, err := parseCheckpointEntry(line)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if i > 0 && !prev.Less(tp) {
			if prev == tp {
				return nil, fmt.Errorf("entry %d: duplicate entry for %s", i+1, tp)
			}
			return nil, fmt.Errorf("entry %d: %s is out of order after %s", i+1, tp, prev)
		}
		cp[tp] = offset
		prev = tp
	}
	return cp, nil
}

func parseCheckpointEntry(line []byte) (TopicPartition, int64, error) {
	fields := bytes.Split(line, []byte(" "))
	if len(fields) != 3 {
		return TopicPartition{}, 0, fmt.Errorf("%q is not \"<topic> <partition> <offset>\"", clip(line))
	}
	topic := string(fields[0])
	if why := validTopic(topic); why != "" {
		return TopicPartition{}, 0, errors.New(why)
	}
	partition, ok := parseCanonicalInt(fields[1], 31)
	if !ok || partition < 0 {
		return TopicPartition{}, 0, fmt.Errorf("partition %q of topic %s is not a non-negative decimal number", clip(fields[1]), topic)
	}
	tp := TopicPartition{Topic: topic, Partition: int32(partition)}
	offset, ok := parseCanonicalInt(fields[2], 63)
	if !ok {
		return TopicPartition{}, 0, fmt.Errorf("offset %q of %s is not a decimal number", clip(fields[2]), tp)
	}
	if offset < 0 {
		return TopicPartition{}, 0, fmt.Errorf("offset %d of %s is negative", offset, tp)
	}
	return tp, offset, nil
}

// parseCanonicalInt parses a signed decimal that fits in bits+1 bits and is
// written exactly as strconv.FormatInt writes it: no sign for positives, no
// leading zeros.
func parseCanonicalInt(b []byte, bits int) (int64, bool) {
	v, err := strconv.ParseInt(string(b), 10, bits+1)
	if err != nil || strconv.FormatInt(v, 10) != string(b) {
		return 0, false
	}
	return v, true
}

func parseChecksumLine(line []byte) (uint32, bool) {
	hex, ok := bytes.CutPrefix(line, []byte(checkpointSumKey))
	if !ok || len(hex) != checkpointSumDigits {
		return 0, false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(string(hex), 16, 32)
	return uint32(v), err == nil
}

// clip shortens b for an error message, so that a garbage file does not
// produce a garbage-sized error.
func clip(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// validTopic reports why name is not a legal Kafka topic name, or "" if it
// is one. Kafka allows 1 to 249 characters of [a-zA-Z0-9._-].
func validTopic(name string) string {
	if name == "" {
		return "topic name is empty"
	}
	if len(name) > 249 {
		return "topic name is longer than 249 characters"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "topic name " + strconv.Quote(name) + " has a character outside [a-zA-Z0-9._-]"
		}
	}
	return ""
}
