package storage

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// badgerLogger routes Badger's log output to zap. Badger is chatty at INFO
// (compactions, table flushes), so INFO is demoted to zap's Debug level.
type badgerLogger struct {
	log *zap.Logger
}

var _ badger.Logger = badgerLogger{}

func newBadgerLogger(l *zap.Logger) badgerLogger {
	// Skip emit, the method above it and badger.Options' forwarding method
	// so that the reported caller is the Badger call site.
	return badgerLogger{log: l.Named("badger").WithOptions(zap.AddCallerSkip(3))}
}

func (l badgerLogger) Errorf(format string, args ...any) {
	l.emit(zapcore.ErrorLevel, format, args)
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.emit(zapcore.WarnLevel, format, args)
}

func (l badgerLogger) Infof(format string, args ...any) {
	l.emit(zapcore.DebugLevel, format, args)
}

func (l badgerLogger) Debugf(format string, args ...any) {
	l.emit(zapcore.DebugLevel, format, args)
}

// emit formats the message only when the level is enabled, and drops the
// trailing newline Badger appends to most messages.
func (l badgerLogger) emit(level zapcore.Level, format string, args []any) {
	if !l.log.Core().Enabled(level) {
		return
	}
	l.log.Log(level, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}
