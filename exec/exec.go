package exec

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Exec replaces the current process with path (execve): the command keeps the
// PID, receives signals directly and its exit status is the process's. It
// returns only on failure. The limits are checked first (with path counted,
// as the kernel does) so that an oversized environment fails with the names
// of its largest variables rather than a bare E2BIG.
//
// Errors map like dash's (the /bin/sh of Debian and, as ash, of Alpine):
// ENOENT and ENOTDIR are ErrNotFound (127), E2BIG ErrTooLarge, every other
// failure ErrNotExecutable (126: EACCES, ENOEXEC, EISDIR, ETXTBSY, ...).
// LookPath classifies the same way, so check and run agree.
func Exec(path string, argv, envp []string) error {
	// unix.Exec would turn a NUL into a bare EINVAL (and so a 126); BuildEnv
	// already refuses one, this guards callers that built envp themselves.
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argument %d: %w", i, ErrNUL)
		}
	}
	for _, kv := range envp {
		if strings.IndexByte(kv, 0) >= 0 {
			return fmt.Errorf("variable %q: %w", envName(kv), ErrNUL)
		}
	}
	if err := CheckLimitsPath(path, argv, envp); err != nil {
		return err
	}
	err := unix.Exec(path, argv, envp)
	var class error
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		class = ErrNotFound
	case errors.Is(err, unix.E2BIG):
		class = ErrTooLarge
	default:
		class = ErrNotExecutable
	}
	// argv[0], not path: a path found through PATH shows a PATH entry, and
	// PATH may come from a secret.
	name := path
	if len(argv) > 0 && argv[0] != "" {
		name = argv[0]
	}
	return fmt.Errorf("%w: exec %s: %w", class, name, err)
}
