package topology_test

import (
	"errors"

	"github.com/eddystream/eddy/processor"
)

type processorOf = processor.Processor[string, int64, string, int64]

// doubler forwards twice each value and fails on negative ones.
type doubler struct {
	ctx processor.Context[string, int64]
}

func (p *doubler) Init(ctx processor.Context[string, int64]) error { p.ctx = ctx; return nil }
func (p *doubler) Close() error                                    { return nil }

func (p *doubler) Process(r processor.Record[string, int64]) error {
	if r.Value < 0 {
		return errors.New("negative value")
	}
	r.Value *= 2
	return p.ctx.Forward(r)
}
