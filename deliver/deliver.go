package deliver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	shimexec "github.com/phase-shim/phase-shim/exec"
)

// DefaultDirName is the default directory under /run/secrets, the place
// Docker and Kubernetes already use for secret files.
const DefaultDirName = "phase-shim"

// runSecrets is where the default directory goes when it can; a variable so
// tests can point it elsewhere.
var runSecrets = "/run/secrets"

// FileSuffix is appended to a key's name to make the variable that carries
// the file's path (DATABASE_CERT → DATABASE_CERT_FILE), the convention of
// the official Docker images (POSTGRES_PASSWORD_FILE).
const FileSuffix = "_FILE"

// Options configures Plan.
type Options struct {
	// Patterns selects the keys delivered as files: exact names or
	// path.Match globs (`*_PEM`, `TLS_*`), matched case-sensitively
	// against the final names, i.e. after --invalid-keys renamed them
	// (`SECRET_KEY?` is matched as `SECRET_KEY_`). Every pattern must match
	// at least one key (ErrNoMatch): the command expects the file.
	Patterns []string
	// Dir is the directory for the files. Empty: /run/secrets/phase-shim
	// when /run/secrets is writable or can be created, else a new private
	// directory under TmpDir.
	Dir string
	// TmpDir is where the fallback directory is created; empty means
	// os.TempDir() ($TMPDIR, else /tmp).
	TmpDir string
}

// File is one key delivered as a file.
type File struct {
	Key    string // the key; it no longer appears in the environment
	Var    string // Key + "_FILE", set to Path
	Path   string // Dir/Key
	Size   int    // value length in bytes
	Source string // where the secret came from
}

// Delivery is the outcome of Plan: which keys become files and the
// variables the command gets instead. Nothing is written until Write.
type Delivery struct {
	// Dir is the absolute directory of the files ("" when no key goes to
	// a file).
	Dir string
	// Files lists the delivered keys in input order.
	Files []File
	// Vars is the input with each delivered KEY replaced, at the same
	// position, by KEY_FILE=Dir/KEY (Source kept). Pass it to
	// exec.BuildEnv instead of the input.
	Vars []shimexec.Var
	// Warnings for the user (a directory not on tmpfs). Plan predicts
	// them; Write replaces them with what it found on the real directory.
	Warnings []string

	values []string // parallel to Files; never formatted (see String)
}

// String describes the delivery without any value, so that a stray %v in
// a log line cannot leak one.
func (d *Delivery) String() string {
	if d == nil {
		return "<nil delivery>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d secret files in %s:", len(d.Files), d.Dir)
	for _, f := range d.Files {
		b.WriteString(" " + f.Key + " (" + strconv.Itoa(f.Size) + " bytes)")
	}
	return b.String()
}

// Plan decides which of vars go to files, where, and what the command's
// variables become. It does not create or write anything, so `check` can
// show the result; it does refuse a directory Write would refuse or could
// not create.
// vars must have unique names (exec.Layer's output).
func Plan(vars []shimexec.Var, o Options) (*Delivery, error) {
	d := &Delivery{Vars: append([]shimexec.Var(nil), vars...)}
	if len(o.Patterns) == 0 {
		return d, nil
	}
	for _, p := range o.Patterns {
		if p == "" {
			return nil, fmt.Errorf("%w: empty pattern", ErrPattern)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrPattern, p, err)
		}
	}

	index := make(map[string]int, len(vars))
	for i, v := range vars {
		if j, dup := index[v.Name]; dup {
			return nil, fmt.Errorf("%w: %s appears twice (from %s and %s)", ErrName, v.Name, vars[j].Source, v.Source)
		}
		index[v.Name] = i
	}

	hits := make([]bool, len(o.Patterns))
	var chosen []int
	for i, v := range vars {
		matched := false
		for k, p := range o.Patterns {
			// Cannot fail: every pattern was checked above.
			if ok, _ := path.Match(p, v.Name); ok {
				hits[k] = true
				matched = true
			}
		}
		if matched {
			chosen = append(chosen, i)
		}
	}
	var missing []string
	for k, hit := range hits {
		if !hit {
			missing = append(missing, strconv.Quote(o.Patterns[k]))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s (names are matched after --invalid-keys renaming, case-sensitively); the command would miss its file, so it is not started",
			ErrNoMatch, strings.Join(missing, ", "))
	}

	for _, i := range chosen {
		v := vars[i]
		if err := checkFileName(v.Name); err != nil {
			return nil, err
		}
		name := v.Name + FileSuffix
		if j, taken := index[name]; taken {
			return nil, fmt.Errorf("%w: %s would be replaced by %s, but %s is already a secret (from %s); rename one of them or narrow --file",
				ErrName, v.Name, name, name, vars[j].Source)
		}
	}

	dir, err := chooseDir(o)
	if err != nil {
		return nil, err
	}
	if err := inspectDir(dir); err != nil {
		return nil, err
	}
	if err := CheckWritable(dir); err != nil {
		return nil, err
	}
	d.Dir = dir
	for _, i := range chosen {
		v := vars[i]
		name := v.Name + FileSuffix
		p := filepath.Join(dir, v.Name)
		d.Files = append(d.Files, File{Key: v.Name, Var: name, Path: p, Size: len(v.Value), Source: v.Source})
		d.values = append(d.values, v.Value)
		d.Vars[i] = shimexec.Var{Name: name, Value: p, Source: v.Source}
	}
	if w := TmpfsWarning(dir); w != "" {
		d.Warnings = append(d.Warnings, w)
	}
	return d, nil
}

// checkFileName refuses a key that cannot be a single file name. Only
// --invalid-keys=keep lets such names this far.
func checkFileName(key string) error {
	switch {
	case key == "" || key == "." || key == "..":
		return fmt.Errorf("%w: %q is not a usable file name", ErrName, key)
	case strings.ContainsAny(key, "/\x00"):
		return fmt.Errorf("%w: %q contains '/' or NUL and cannot be a file name", ErrName, key)
	case len(key) > 255:
		return fmt.Errorf("%w: key of %d bytes is longer than a file name may be (255)", ErrName, len(key))
	}
	return nil
}

// chooseDir resolves the directory without creating it. The fallback gets a
// random name now (as os.MkdirTemp would) so that Plan can show the final
// paths; Write creates it 0700 and refuses it if someone else did first.
func chooseDir(o Options) (string, error) {
	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrWrite, o.Dir, err)
		}
		return dir, nil
	}
	if usable(runSecrets) {
		return filepath.Join(runSecrets, DefaultDirName), nil
	}
	tmp := o.TmpDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	tmp, err := filepath.Abs(tmp)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrWrite, tmp, err)
	}
	return filepath.Join(tmp, DefaultDirName+"-"+rand.Text()), nil
}

// usable reports whether dir is a writable directory, or absent with a
// writable parent. access(2) also answers EROFS on a read-only root
// filesystem, the usual case for hardened containers.
func usable(dir string) bool {
	if st, err := os.Stat(dir); err == nil {
		return st.IsDir() && unix.Access(dir, unix.W_OK|unix.X_OK) == nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false
	}
	parent := filepath.Dir(dir)
	st, err := os.Stat(parent)
	return err == nil && st.IsDir() && unix.Access(parent, unix.W_OK|unix.X_OK) == nil
}

// Write creates the directory if needed (0700) and writes every file (0400,
// atomically). It may be called again to rewrite the same files. A file
// already present under a delivered name is replaced; other files in the
// directory are left alone. The shim execs the command afterwards and so
// cannot remove the files: put the directory on a tmpfs.
func (d *Delivery) Write() error {
	if len(d.Files) == 0 {
		return nil
	}
	dh, err := openPrivateDir(d.Dir)
	if err != nil {
		return err
	}
	defer dh.close()
	for i, f := range d.Files {
		value := d.values[i]
		err := dh.writeFile(f.Key, func(w io.Writer) error {
			_, err := io.WriteString(w, value)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := dh.sync(); err != nil {
		return err
	}
	d.Warnings = nil
	if w := dh.warning(); w != "" {
		d.Warnings = append(d.Warnings, w)
	}
	return nil
}
