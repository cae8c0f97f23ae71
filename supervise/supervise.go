// Package supervise runs a command as the child of a minimal init: it
// forwards signals, reaps every zombie and reports the child's exit status.
// It exists for applications that become PID 1 in a container and neither
// handle SIGTERM nor reap the orphans their own children leave behind.
package supervise

import (
	"errors"
	"os"
	"time"
)

// DefaultKillTimeout is how long the child's process group may outlive a
// forwarded SIGTERM or SIGINT before it is killed. It matches the grace
// period docker and ECS give a container, so the shim never escalates earlier
// than the orchestrator would have.
const DefaultKillTimeout = 10 * time.Second

// Options tune Run. The zero value is ready to use.
type Options struct {
	// KillTimeout: zero means DefaultKillTimeout, a negative value never
	// escalates to SIGKILL.
	KillTimeout time.Duration
	// Debugf, when set, receives progress lines (pids, signals, statuses;
	// never argv or the environment, which carry secrets).
	Debugf func(format string, args ...any)
}

// ErrStart wraps the reason the command could not be started. The underlying
// errno stays reachable with errors.Is, so the caller can tell
// fs.ErrNotExist (exit 127) from fs.ErrPermission (exit 126).
var ErrStart = errors.New("cannot start command")

// ErrUnsupported is returned by Run where init mode is not implemented.
var ErrUnsupported = errors.New("init mode is only supported on linux")

// IsPID1 reports whether this process is the init of its PID namespace,
// which is when --init=auto turns supervision on.
func IsPID1() bool { return os.Getpid() == 1 }

func (o Options) killTimeout() time.Duration {
	if o.KillTimeout == 0 {
		return DefaultKillTimeout
	}
	return o.KillTimeout
}

func (o Options) debugf(format string, args ...any) {
	if o.Debugf != nil {
		o.Debugf(format, args...)
	}
}
