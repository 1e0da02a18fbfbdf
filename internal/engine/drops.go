package engine

import (
	"context"
	"log/slog"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
)

// dropReason maps the task core's reason for dropping a record to the
// metric's label value (the same words; the core may not import metrics).
func dropReason(r task.DropReason) metrics.DropReason { return metrics.DropReason(r) }

// logDrop logs, at debug, a record task id dropped on purpose. Kafka
// Streams logs these at warn; a topic full of records without keys would
// make that a flood, and the count is in eddy_dropped_records_total.
func logDrop(log *slog.Logger, id processor.TaskID, d task.Drop) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if d.HasOrigin {
		log.Debug("dropping a record", "task", id, "reason", string(d.Reason), "node", d.Node,
			"topic", d.Origin.Topic, "partition", d.Origin.Partition, "offset", d.Origin.Offset)
		return
	}
	log.Debug("dropping a record forwarded by a punctuator", "task", id, "reason", string(d.Reason), "node", d.Node)
}
