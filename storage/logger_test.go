package storage

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestBadgerLoggerLevels(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	l := newBadgerLogger(zap.New(core))

	l.Errorf("error %d\n", 1)
	l.Warningf("warning %d\n", 2)
	l.Infof("info %d\n", 3)
	l.Debugf("debug %d", 4)

	want := []struct {
		level zapcore.Level
		msg   string
	}{
		{zapcore.ErrorLevel, "error 1"},
		{zapcore.WarnLevel, "warning 2"},
		{zapcore.DebugLevel, "info 3"},
		{zapcore.DebugLevel, "debug 4"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg || got[i].LoggerName != "badger" {
			t.Errorf("entry %d = %v %q (logger %q), want %v %q (logger badger)",
				i, got[i].Level, got[i].Message, got[i].LoggerName, w.level, w.msg)
		}
	}
}

func TestBadgerLoggerSkipsDisabledLevels(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	l := newBadgerLogger(zap.New(core))
	l.Infof("chatty")
	l.Debugf("chattier")
	if n := logs.Len(); n != 0 {
		t.Errorf("got %d entries at Info level, want 0", n)
	}
}

func TestOpenRoutesBadgerLogs(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := Open(Options{Dir: t.TempDir(), Logger: zap.New(core)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if logs.FilterLoggerName("badger").Len() == 0 {
		t.Error("no Badger log entries reached the zap logger")
	}
}
