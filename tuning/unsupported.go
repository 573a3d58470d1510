//go:build !linux

package tuning

import "log/slog"

// DefaultHost returns the real host. On this OS every check reports
// ErrNotSupported.
func DefaultHost() Host { return Host{SysRoot: "/sys", ProcRoot: "/proc"} }

// Check returns ErrNotSupported: the settings it reads are Linux's.
func (h Host) Check(opts Options) (Report, error) { return Report{}, ErrNotSupported }

// Apply returns ErrNotSupported: the settings it writes are Linux's.
func (h Host) Apply(opts Options, dryRun bool) ([]Change, error) { return nil, ErrNotSupported }

// StartupCheck logs once that host checks are not supported here.
func StartupCheck(opts Options, log *slog.Logger) StartupResult {
	return DefaultHost().StartupCheck(opts, log)
}

// StartupCheck logs once that host checks are not supported here.
func (h Host) StartupCheck(opts Options, log *slog.Logger) StartupResult {
	log.Info("host tuning checks skipped", "err", ErrNotSupported)
	return StartupResult{Err: ErrNotSupported}
}
