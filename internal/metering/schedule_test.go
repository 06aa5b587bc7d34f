package metering

import (
	"testing"
	"time"
)

func ptrTo[T any](v T) *T { return &v }

func TestBudgetPeriodSchedule(t *testing.T) {
	t.Parallel()
	anchor := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := Every(anchor, day)
	tests := []struct {
		name      string
		now       time.Time
		start     time.Time
		nextReset time.Time
	}{
		{"at the anchor", anchor, anchor, anchor.Add(day)},
		{"just before the first reset", anchor.Add(day - time.Nanosecond), anchor, anchor.Add(day)},
		{"at the first reset", anchor.Add(day), anchor.Add(day), anchor.Add(2 * day)},
		{"just after the first reset", anchor.Add(day + time.Second), anchor.Add(day), anchor.Add(2 * day)},
		{"several missed periods", anchor.Add(10*day + 5*time.Hour), anchor.Add(10 * day), anchor.Add(11 * day)},
		{"before the anchor", anchor.Add(-time.Hour), anchor, anchor.Add(day)},
	}
	for _, tt := range tests {
		if got := p.Start(tt.now); !got.Equal(tt.start) {
			t.Errorf("%s: start = %v, want %v", tt.name, got, tt.start)
		}
		if got := p.Next(tt.now); got == nil || !got.Equal(tt.nextReset) {
			t.Errorf("%s: next = %v, want %v", tt.name, got, tt.nextReset)
		}
	}
	forever := Every(anchor, 0)
	if got := forever.Start(anchor.Add(1000 * day)); !got.Equal(anchor) || forever.Next(anchor) != nil {
		t.Errorf("a budget without duration never resets: start %v next %v", got, forever.Next(anchor))
	}
}

// A changed duration never changes spend: the period current at the change
// keeps its start and its end, and periods of the new length follow.
func TestScheduleKeepsTheCurrentPeriodWhenTheDurationChanges(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	week, month := 7*day, 30*day
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(days float64) time.Time { return anchor.Add(time.Duration(days * 24 * float64(time.Hour))) }
	tests := []struct {
		name      string
		changes   []DurationChange
		duration  time.Duration
		now       time.Time
		wantStart time.Time
		wantNext  *time.Time
	}{
		{"no change", nil, month, at(40), at(30), ptrTo(at(60))},
		{"shorter: the current period runs to its old end", []DurationChange{{At: at(15), Previous: month}}, week, at(20), at(0), ptrTo(at(30))},
		{"shorter: weekly periods follow", []DurationChange{{At: at(15), Previous: month}}, week, at(38), at(37), ptrTo(at(44))},
		{"longer", []DurationChange{{At: at(3), Previous: week}}, month, at(10), at(7), ptrTo(at(37))},
		{"no duration before: one new duration after the change", []DurationChange{{At: at(100)}}, week, at(105), at(0), ptrTo(at(107))},
		{"no duration before: then weekly", []DurationChange{{At: at(100)}}, week, at(108), at(107), ptrTo(at(114))},
		{"two changes in one period: the last wins after it", []DurationChange{{At: at(2), Previous: month}, {At: at(5), Previous: week}}, day, at(31.5), at(31), ptrTo(at(32))},
		{"changes before the anchor do not apply", []DurationChange{{At: at(-5), Previous: month}}, week, at(8), at(7), ptrTo(at(14))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ScheduleOf(anchor, tt.changes, tt.duration)
			if got := p.Start(tt.now); !got.Equal(tt.wantStart) {
				t.Errorf("start = %v, want %v", got, tt.wantStart)
			}
			if got := p.Next(tt.now); (got == nil) != (tt.wantNext == nil) || (got != nil && !got.Equal(*tt.wantNext)) {
				t.Errorf("next = %v, want %v", got, tt.wantNext)
			}
		})
	}
}

// The budget history shows when each period ended: the period current at
// a duration change ends where it would have; later ones last the new
// duration; a period without duration never ends.
func TestScheduleEndOfAPeriod(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	changed := ScheduleOf(anchor, []DurationChange{{At: anchor.Add(15 * day), Previous: 30 * day}}, 7*day)
	for _, tt := range []struct {
		name  string
		s     Schedule
		start time.Time
		want  *time.Time
	}{
		{"daily", Every(anchor, day), anchor.Add(3 * day), ptrTo(anchor.Add(4 * day))},
		{"forever", Every(anchor, 0), anchor, nil},
		{"the period current at the change", changed, anchor, ptrTo(anchor.Add(30 * day))},
		{"after the change", changed, anchor.Add(37 * day), ptrTo(anchor.Add(44 * day))},
	} {
		got := tt.s.EndOf(tt.start)
		if (got == nil) != (tt.want == nil) || (got != nil && !got.Equal(*tt.want)) {
			t.Errorf("%s: EndOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}
