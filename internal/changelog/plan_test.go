package changelog

import (
	"errors"
	"testing"
)

func TestPlanRestore(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		checkpoint, logStart, end int64
		want                      Plan
		wantErr                   error // matched with errors.Is; nil means success
		wantAnyErr                bool
	}{
		{name: "no checkpoint", checkpoint: NoCheckpoint, logStart: 0, end: 100, want: Plan{From: 0, End: 100, Full: true}},
		{name: "no checkpoint, log start moved", checkpoint: NoCheckpoint, logStart: 40, end: 100, want: Plan{From: 40, End: 100, Full: true}},
		{name: "no checkpoint, empty partition", checkpoint: NoCheckpoint, logStart: 0, end: 0, want: Plan{From: 0, End: 0, Full: true}},
		{name: "checkpoint in range", checkpoint: 60, logStart: 0, end: 100, want: Plan{From: 60, End: 100}},
		{name: "checkpoint at log start", checkpoint: 40, logStart: 40, end: 100, want: Plan{From: 40, End: 100}},
		{name: "checkpoint at end", checkpoint: 100, logStart: 0, end: 100, want: Plan{From: 100, End: 100}},
		{name: "checkpoint zero, empty partition", checkpoint: 0, logStart: 0, end: 0, want: Plan{From: 0, End: 0}},
		{name: "checkpoint below log start", checkpoint: 10, logStart: 40, end: 100, want: Plan{From: 40, End: 100, Full: true}},
		{name: "checkpoint ahead", checkpoint: 101, logStart: 0, end: 100, wantErr: ErrCheckpointAhead},
		{name: "checkpoint ahead of empty partition", checkpoint: 5, logStart: 0, end: 0, wantErr: ErrCheckpointAhead},
		{name: "invalid checkpoint", checkpoint: -2, logStart: 0, end: 100, wantAnyErr: true},
		{name: "end below log start", checkpoint: NoCheckpoint, logStart: 50, end: 40, wantAnyErr: true},
		{name: "negative log start", checkpoint: NoCheckpoint, logStart: -1, end: 40, wantAnyErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanRestore(tc.checkpoint, tc.logStart, tc.end)
			switch {
			case tc.wantErr != nil || tc.wantAnyErr:
				if err == nil {
					t.Fatalf("PlanRestore = %+v, want an error", got)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %q does not match %q", err, tc.wantErr)
				}
				if tc.wantAnyErr && errors.Is(err, ErrCheckpointAhead) {
					t.Fatalf("error %q matches ErrCheckpointAhead; the store is not to blame", err)
				}
			case err != nil:
				t.Fatalf("PlanRestore: %v", err)
			case got != tc.want:
				t.Fatalf("PlanRestore = %+v, want %+v", got, tc.want)
			}
		})
	}
}
