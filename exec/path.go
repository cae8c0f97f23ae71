package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultPath is searched when envp has no PATH at all. Images FROM scratch
// often set none; this is the common tail of the PATH every distribution's
// login shell sets, without sbin directories, which hold admin tools rather
// than application entrypoints. A PATH that is present but empty is taken
// literally: it lists no directory.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// LookPath finds file the way a shell would after exporting envp: a name with
// a '/' is used as given; otherwise every absolute directory of envp's PATH
// is tried in order. Empty and relative entries are skipped because they mean
// "the current directory", and a wrapper that runs whatever sits in the
// working directory under a secret-laden environment is a trap.
//
// Like bash and dash, a match that is not executable (or is a directory)
// does not stop the search; if nothing executable turns up, the first such
// match gives ErrNotExecutable (exit 126), and no match at all ErrNotFound
// (exit 127).
func LookPath(file string, envp []string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("%w: empty command name", ErrNotFound)
	}
	if strings.ContainsRune(file, '/') {
		if err := executable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	path, ok := lookupEnv(envp, "PATH")
	if !ok {
		path = DefaultPath
	}
	var firstBad error
	for i, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, file)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		// Only a file that exists counts against the command, as in bash
		// and dash; an unreadable PATH directory is simply passed over.
		// The error names the PATH entry by position, not by its text: PATH
		// may itself be a secret, and its value must never reach a message.
		if _, serr := os.Stat(p); serr == nil && firstBad == nil {
			firstBad = fmt.Errorf("%w: %q found in PATH entry %d, %s", ErrNotExecutable, file, i+1, reason(err))
		}
	}
	if firstBad != nil {
		return "", firstBad
	}
	return "", fmt.Errorf("%w: %q in any absolute PATH entry (PATH has %d entries)", ErrNotFound, file, len(filepath.SplitList(path)))
}

// lookupEnv returns the first value of name, as getenv would.
func lookupEnv(envp []string, name string) (string, bool) {
	for _, kv := range envp {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// reason is what made executable refuse a file, without the file's path.
func reason(err error) string {
	switch {
	case errors.Is(err, errIsDir):
		return "which is a directory"
	case errors.Is(err, errNoExec):
		return "without execute permission"
	}
	return "which cannot be executed"
}

var (
	errIsDir  = errors.New("is a directory")
	errNoExec = errors.New("permission denied")
)

// executable classifies p: nil, ErrNotFound, or ErrNotExecutable.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%w: %s", ErrNotFound, p)
		}
		return fmt.Errorf("%w: %s: %w", ErrNotExecutable, p, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s: %w", ErrNotExecutable, p, errIsDir)
	}
	// AT_EACCESS asks with the effective IDs, which execve uses; root passes
	// only when some execute bit is set, as execve demands.
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotExecutable, p, errNoExec)
	}
	return nil
}
