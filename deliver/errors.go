package deliver

import "errors"

// Error classes. Every error returned by this package wraps exactly one of
// them, so main can choose the exit code with errors.Is.
var (
	// ErrPattern: a --file pattern is not a valid path.Match glob (exit 64).
	ErrPattern = errors.New("bad --file pattern")
	// ErrNoMatch: a --file pattern matched no secret. The command expects
	// the file, so this fails closed like a missing secret would (exit 65).
	ErrNoMatch = errors.New("no secret matches --file pattern")
	// ErrName: a key cannot be a file name, or its KEY_FILE variable would
	// collide with another variable (exit 65).
	ErrName = errors.New("cannot deliver key as a file")
	// ErrUnsafeDir: the directory is a symlink, not a directory, not ours,
	// or open to group/others; the shim refuses to write secrets there
	// (exit 78).
	ErrUnsafeDir = errors.New("unsafe secrets directory")
	// ErrFormat: --write-format cannot represent a value (e.g. a NUL byte
	// in a format without escapes) (exit 65).
	ErrFormat = errors.New("cannot format secrets")
	// ErrWrite: creating the directory or writing a file failed, e.g. a
	// read-only filesystem or no /tmp in a scratch image (exit 78).
	ErrWrite = errors.New("cannot write secret file")
)
