package metering

import "time"

// Schedule is when a budget's periods start: at anchor, then every
// duration (never again when duration is 0), so resets fall on
// anchor + k × duration whenever the next request comes. When first is
// set, one period starts at first and runs until anchor: the period that
// was current when the duration changed (see WithDuration).
type Schedule struct {
	first    time.Time
	anchor   time.Time
	duration time.Duration
}

// DurationChange is a change of a budget's period duration: when it was
// made and the duration before it (0: none, the period never ended).
type DurationChange struct {
	At       time.Time
	Previous time.Duration
}

// Every returns the schedule of periods of duration d from anchor (one
// period that never ends when d is 0).
func Every(anchor time.Time, d time.Duration) Schedule {
	return Schedule{anchor: anchor, duration: d}
}

// Start returns the start of the period holding now.
func (s Schedule) Start(now time.Time) time.Time {
	if !s.first.IsZero() && now.Before(s.anchor) {
		return s.first
	}
	if s.duration <= 0 || now.Before(s.anchor) {
		return s.anchor
	}
	k := now.Sub(s.anchor) / s.duration
	return s.anchor.Add(k * s.duration)
}

// Next returns when the period holding now ends, or nil if it never does.
func (s Schedule) Next(now time.Time) *time.Time {
	if !s.first.IsZero() && now.Before(s.anchor) {
		t := s.anchor
		return &t
	}
	if s.duration <= 0 {
		return nil
	}
	t := s.Start(now).Add(s.duration)
	return &t
}

// EndOf returns when the period that started at start ends, or nil if it
// does not end (or start is not a period of the schedule since its last
// change, whose end is not known).
func (s Schedule) EndOf(start time.Time) *time.Time {
	switch {
	case !s.first.IsZero() && start.Equal(s.first):
		end := s.anchor
		return &end
	case s.duration > 0 && !start.Before(s.anchor):
		end := start.Add(s.duration)
		return &end
	}
	return nil
}

// WithDuration is the schedule after the duration changed to d at time
// at. A limit change never changes spend, so the period current at that
// moment keeps its start and its end (a period that had no end ends one
// new duration after the change); periods of the new length follow it.
func (s Schedule) WithDuration(at time.Time, d time.Duration) Schedule {
	if d == s.duration {
		return s
	}
	start := s.Start(at)
	if d <= 0 {
		return Schedule{anchor: start} // the current period never ends
	}
	end := at.Add(d)
	if next := s.Next(at); next != nil {
		end = *next
	}
	return Schedule{first: start, anchor: end, duration: d}
}

// ScheduleOf returns the schedule of spend periods that started at anchor
// and went through the duration changes (oldest first) to duration now;
// changes at or before anchor were made before the schedule began.
func ScheduleOf(anchor time.Time, changes []DurationChange, duration time.Duration) Schedule {
	var relevant []DurationChange
	for i, c := range changes {
		if c.At.After(anchor) {
			relevant = changes[i:]
			break
		}
	}
	s := Schedule{anchor: anchor, duration: duration}
	if len(relevant) == 0 {
		return s
	}
	s.duration = relevant[0].Previous
	for i, c := range relevant {
		after := duration
		if i+1 < len(relevant) {
			after = relevant[i+1].Previous
		}
		s = s.WithDuration(c.At, after)
	}
	return s
}
