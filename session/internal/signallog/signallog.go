// Package signallog configures libsignal's process-wide logger once.
//
// libsignal installs a default logger lazily on first use, from whichever
// goroutine logs first; with many clients encrypting at once that is a data
// race. Installing ours before any client starts avoids it, and keeps
// libsignal's per-message debug lines out of the service log.
package signallog

import (
	"sync"

	"go.mau.fi/libsignal/logger"
)

type quiet struct{}

func (quiet) Debug(string, string)   {}
func (quiet) Info(string, string)    {}
func (quiet) Warning(string, string) {}
func (quiet) Error(string, string)   {}
func (quiet) Configure(string)       {}

var once sync.Once

// Install sets the quiet logger; only the first call in a process acts.
func Install() {
	once.Do(func() {
		var l logger.Loggable = quiet{}
		logger.Setup(&l)
	})
}
