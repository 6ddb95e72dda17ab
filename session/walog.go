package session

import (
	"context"
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts whatsmeow's logger to slog. whatsmeow is chatty: its
// info and warnings (such as "No LID found" on every message) go to debug,
// its errors to warn, since it recovers from most of them itself.
type waLogger struct {
	l *slog.Logger
}

func newWALogger(l *slog.Logger) waLog.Logger { return waLogger{l: l} }

func (w waLogger) Errorf(msg string, args ...any) { w.l.Warn(fmt.Sprintf(msg, args...)) }
func (w waLogger) Warnf(msg string, args ...any)  { w.log(slog.LevelDebug, msg, args) }
func (w waLogger) Infof(msg string, args ...any)  { w.log(slog.LevelDebug, msg, args) }
func (w waLogger) Debugf(msg string, args ...any) { w.log(slog.LevelDebug-4, msg, args) }

func (w waLogger) log(level slog.Level, msg string, args []any) {
	if ctx := context.Background(); w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, fmt.Sprintf(msg, args...))
	}
}

func (w waLogger) Sub(module string) waLog.Logger {
	return waLogger{l: w.l.With("module", module)}
}
