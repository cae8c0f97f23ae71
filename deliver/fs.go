package deliver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// tempName gives the name a file is written under before it is renamed
// into place. Random so that another process cannot plant a symlink at it in
// advance; tests replace it to do exactly that.
var tempName = func() string { return ".phase-shim-" + rand.Text() + ".tmp" }

// tempAttempts bounds the retries when a temporary name is already taken
// (someone planted it, or an improbable clash). A planted name is skipped,
// never followed and never removed: it is not ours.
const tempAttempts = 100

// dirHandle is an open directory; every file operation goes through fd, so
// replacing the directory's path after it was opened changes nothing.
type dirHandle struct {
	fd   int
	path string
}

func (d *dirHandle) close() { unix.Close(d.fd) }

// checkPrivate accepts only a real directory, owned by the effective user,
// with no permission bits for group or others. A directory someone else can
// write to lets them swap our files; one others can read leaks them.
func checkPrivate(path string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		return fmt.Errorf("%w: %s is a symbolic link; give the real directory with --files-dir", ErrUnsafeDir, path)
	default:
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, path)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%w: %s is owned by uid %d, not by this process (uid %d)", ErrUnsafeDir, path, st.Uid, uid)
	}
	if perm := st.Mode & 0o7777; perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, open to group or others; want 0700 (chmod 700 it or use another --files-dir)", ErrUnsafeDir, path, perm)
	}
	return nil
}

// inspectDir is the read-only half of openPrivateDir, for Plan: nil when
// path does not exist yet (it will be created 0700) or is safe.
func inspectDir(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrWrite, path, err)
	}
	return checkPrivate(path, &st)
}

// openPrivateDir opens the secrets directory, creating it 0700 (and any
// missing parents 0755) when absent. The final component is opened with
// O_NOFOLLOW and the checks run on the opened descriptor, so what is checked
// is what is written into. Symlinks among the parents are followed: they
// belong to whoever set up the filesystem (/var/run → /run is common).
func openPrivateDir(path string) (*dirHandle, error) {
	parent, base := filepath.Dir(path), filepath.Base(path)
	if base == string(filepath.Separator) || base == "." || base == ".." {
		return nil, fmt.Errorf("%w: %q cannot be the secrets directory", ErrUnsafeDir, path)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w (choose a writable directory with --files-dir, ideally on a tmpfs)", ErrWrite, parent, err)
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrWrite, parent, err)
	}
	defer unix.Close(pfd)
	created := true
	if err := unix.Mkdirat(pfd, base, 0o700); errors.Is(err, unix.EEXIST) {
		created = false
	} else if err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w (choose a writable directory with --files-dir, ideally on a tmpfs)", ErrWrite, path, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		// Lstat only to word the refusal; the open already failed safely.
		if ierr := inspectDir(path); ierr != nil {
			return nil, ierr
		}
		return nil, fmt.Errorf("%w: opening %s: %w", ErrUnsafeDir, path, err)
	}
	d := &dirHandle{fd: fd, path: path}
	if created {
		// mkdir's mode passed through the umask; state it exactly.
		if err := unix.Fchmod(fd, 0o700); err != nil {
			d.close()
			return nil, fmt.Errorf("%w: chmod %s: %w", ErrWrite, path, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		d.close()
		return nil, fmt.Errorf("%w: stat %s: %w", ErrWrite, path, err)
	}
	if err := checkPrivate(path, &st); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// openParentDir opens the directory that will hold a --write-file. Unlike
// the --file directory it is the user's own (e.g. /app/config) and is not
// required to be private; the file itself is 0400 and never written through
// a symlink.
func openParentDir(dir string) (*dirHandle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w", ErrWrite, dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrWrite, dir, err)
	}
	return &dirHandle{fd: fd, path: dir}, nil
}

// writeFile atomically replaces name in the directory with a 0400 file
// holding what fill writes. The directory itself is not fsynced here (see
// sync) so that many files cost one directory flush.
func (d *dirHandle) writeFile(name string, fill func(io.Writer) error) error {
	var f *os.File
	var tmp string
	for range tempAttempts {
		tmp = tempName()
		// O_EXCL with O_CREAT refuses any existing entry, a symlink
		// included, so a planted name can never redirect the write.
		fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: creating a temporary file in %s: %w", ErrWrite, d.path, err)
		}
		f = os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
		break
	}
	if f == nil {
		return fmt.Errorf("%w: no free temporary name in %s after %d attempts", ErrWrite, d.path, tempAttempts)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("%w: writing %s: %w", ErrWrite, filepath.Join(d.path, name), err)
	}
	// The data must be on disk before the rename makes it visible, or a
	// crash could leave the final name pointing at an empty file.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrWrite, filepath.Join(d.path, name), err)
	}
	if err := f.Chmod(0o400); err != nil {
		return fmt.Errorf("%w: chmod %s: %w", ErrWrite, filepath.Join(d.path, name), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: closing %s: %w", ErrWrite, filepath.Join(d.path, name), err)
	}
	// rename replaces whatever is at name (a symlink is replaced, not
	// followed); it fails on a directory, which is what we want.
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		done = true
		return fmt.Errorf("%w: renaming into %s: %w", ErrWrite, filepath.Join(d.path, name), err)
	}
	done = true
	return nil
}

// sync makes the renames durable.
func (d *dirHandle) sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrWrite, d.path, err)
	}
	return nil
}

// warning is the tmpfs check on the opened directory.
func (d *dirHandle) warning() string {
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.fd, &st); err != nil {
		return ""
	}
	return fsWarning(d.path, uint32(st.Type))
}

// fsWarning says why a directory on anything but tmpfs/ramfs is a weaker
// place for secrets. Empty when there is nothing to say.
func fsWarning(path string, fsType uint32) string {
	switch fsType {
	case uint32(unix.TMPFS_MAGIC), uint32(unix.RAMFS_MAGIC):
		return ""
	}
	return fmt.Sprintf("%s is not on tmpfs (filesystem type %#x): secret files are stored on disk and can outlive the process; mount a tmpfs there or choose a directory on one", path, fsType)
}

// TmpfsWarning returns a warning when dir (or, if it does not exist yet,
// its nearest existing parent, where it would be created) is not on a tmpfs
// or ramfs, and "" when it is or when that cannot be determined.
func TmpfsWarning(dir string) string {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			return fsWarning(dir, uint32(st.Type))
		}
		if !errors.Is(err, unix.ENOENT) || p == filepath.Dir(p) {
			return ""
		}
	}
}

// CheckWritable reports, creating nothing, whether dir can be created or
// written into: its nearest existing ancestor must be a directory this
// process may write to, by access(2) with the effective IDs (which also
// answers EROFS on a read-only filesystem). It lets `check` fail where run
// would, although only run writes. A failure wraps ErrWrite.
func CheckWritable(dir string) error {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		if errors.Is(err, unix.ENOENT) && p != filepath.Dir(p) {
			continue
		}
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s: %w", ErrWrite, p, err)
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return fmt.Errorf("%w: %s is not a directory", ErrWrite, p)
		}
		if err := unix.Faccessat(unix.AT_FDCWD, p, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrWrite, p, err)
		}
		return nil
	}
}
