package app

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
)

// NewLogger returns the process logger: tint text (coloured on a terminal)
// for people, JSON for journald and log shippers.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level)) // validated by loadConfig
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	if format == "json" || (format == "auto" && !tty) {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:      lvl,
		TimeFormat: time.TimeOnly,
		NoColor:    !tty,
	}))
}
