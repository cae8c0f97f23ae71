package deliver

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/format"
)

// WriteAll writes vars to path in format f (--write-file / --write-format),
// 0400 and atomically: the previous file, if any, stays in place until the
// new one is complete on disk. The parent directory is created 0700 when
// missing; it need not be private (the file's own mode protects it), and a
// symlink at path is replaced, never followed. Call TmpfsWarning on the
// parent to tell the user when the file lands on disk.
func WriteAll(path string, f format.Format, vars []shimexec.Var) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrWrite, path, err)
	}
	base := filepath.Base(abs)
	if base == string(filepath.Separator) || base == "." || base == ".." {
		return fmt.Errorf("%w: %q is not a file path", ErrWrite, path)
	}
	// Render first: a value the format refuses must not leave a file
	// behind, nor replace a good one.
	var buf bytes.Buffer
	defer func() { clear(buf.Bytes()) }()
	if err := format.Write(&buf, f, vars); err != nil {
		return fmt.Errorf("%w for %s: %w", ErrFormat, abs, err)
	}
	dh, err := openParentDir(filepath.Dir(abs))
	if err != nil {
		return err
	}
	defer dh.close()
	err = dh.writeFile(base, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return err
	}
	return dh.sync()
}

// FormatForPath is the --write-format to use when none is given: JSON for
// a *.json path, shell for *.sh, dotenv otherwise. Writing dotenv into
// config.json would make the app fail to parse its own config.
func FormatForPath(path string) format.Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return format.JSON
	case ".sh":
		return format.Shell
	}
	return format.Dotenv
}
