package deliver

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	shimexec "github.com/phase-shim/phase-shim/exec"
)

// pem1MiB builds a 1 MiB PEM-looking value: 64-column base64 lines between
// armour, the shape of a long certificate chain.
func pem1MiB(t *testing.T) string {
	t.Helper()
	const size = 1 << 20
	head, tail := "-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n"
	raw := make([]byte, size)
	rand.Read(raw)
	b64 := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.WriteString(head)
	for b.Len() < size-len(tail)-65 {
		b.WriteString(b64[:64])
		b.WriteByte('\n')
		b64 = b64[64:]
	}
	b.WriteString(strings.Repeat("A", size-len(tail)-b.Len()-1) + "\n")
	b.WriteString(tail)
	if b.Len() != size {
		t.Fatalf("pem is %d bytes", b.Len())
	}
	return b.String()
}

// readVar reads the file a *_FILE variable names, as the command would.
func readVar(t *testing.T, vars []shimexec.Var, name string) []byte {
	t.Helper()
	for _, v := range vars {
		if v.Name == name {
			b, err := os.ReadFile(v.Value)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return b
		}
	}
	t.Fatalf("no variable %s", name)
	return nil
}

func TestWriteByteExactAndModes(t *testing.T) {
	pem := pem1MiB(t)
	vars := []shimexec.Var{
		{Name: "BLOB", Value: "a\x00b\x00\x00c\xff\xfe", Source: "phase:/"},
		{Name: "CHAIN_PEM", Value: pem, Source: "phase:/"},
		{Name: "SPACES", Value: "  padded\r\nline\n\n", Source: "phase:/"},
		{Name: "EMPTY", Value: "", Source: "phase:/"},
		{Name: "STAYS", Value: "in-the-env", Source: "phase:/"},
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	d, err := Plan(vars, Options{Patterns: []string{"BLOB", "*_PEM", "SPACES", "EMPTY"}, Dir: dir})
	wantErr(t, err, nil)
	wantErr(t, d.Write(), nil)

	checkMode(t, dir, fs.ModeDir|0o700)
	for _, v := range vars[:4] {
		checkMode(t, filepath.Join(dir, v.Name), 0o400)
		sameValue(t, v.Name, readVar(t, d.Vars, v.Name+"_FILE"), []byte(v.Value))
	}
	if _, err := os.Lstat(filepath.Join(dir, "STAYS")); !os.IsNotExist(err) {
		t.Errorf("STAYS was written to a file (err %v)", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want the 4 files and no leftovers", names)
	}

	// The environment the command would receive no longer holds the
	// values that cannot go there.
	envp, _, err := shimexec.BuildEnv(d.Vars, shimexec.EnvOptions{Environ: []string{"PATH=/bin"}})
	wantErr(t, err, nil)
	wantErr(t, shimexec.CheckLimits([]string{"app"}, envp), nil)
	for _, kv := range envp {
		if strings.HasPrefix(kv, "BLOB=") || strings.HasPrefix(kv, "CHAIN_PEM=") {
			t.Errorf("%s still in envp", kv[:strings.IndexByte(kv, '=')])
		}
	}
}

func TestWriteUmaskDoesNotMatter(t *testing.T) {
	// umask is process-wide: this test must not run in parallel.
	for _, mask := range []int{0, 0o077, 0o277} {
		old := syscall.Umask(mask)
		dir := filepath.Join(t.TempDir(), "secrets")
		d, err := Plan([]shimexec.Var{{Name: "K", Value: "value-one"}}, Options{Patterns: []string{"K"}, Dir: dir})
		if err == nil {
			err = d.Write()
		}
		syscall.Umask(old)
		wantErr(t, err, nil)
		checkMode(t, dir, fs.ModeDir|0o700)
		checkMode(t, filepath.Join(dir, "K"), 0o400)
	}
}

func TestRewriteReplacesOldFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	for i, val := range []string{"first-value-long", "second", ""} {
		d, err := Plan([]shimexec.Var{{Name: "K", Value: val}}, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, nil)
		wantErr(t, d.Write(), nil)
		got, err := os.ReadFile(filepath.Join(dir, "K"))
		if err != nil {
			t.Fatal(err)
		}
		sameValue(t, "K (write "+string(rune('1'+i))+")", got, []byte(val))
		checkMode(t, filepath.Join(dir, "K"), 0o400)
	}
}

// TestAtomicRewrite: while one goroutine rewrites the file again and again
// with values of different lengths, a reader only ever sees a complete
// value, never a prefix or a mix.
func TestAtomicRewrite(t *testing.T) {
	const writes = 100
	const maxReads = 200000
	dir := filepath.Join(t.TempDir(), "secrets")
	p := filepath.Join(dir, "K")
	value := func(i int) string {
		// Lengths differ so a truncated or mixed file cannot pass.
		return strings.Repeat(string(rune('a'+i%26)), 32<<10+i*97)
	}
	complete := func(b []byte) bool {
		if len(b) == 0 {
			return false
		}
		i := int(b[0]-'a') % 26
		for k := i; k < writes; k += 26 {
			if len(b) == 32<<10+k*97 && bytes.Count(b, b[:1]) == len(b) {
				return true
			}
		}
		return false
	}

	write := func(i int) error {
		d, err := Plan([]shimexec.Var{{Name: "K", Value: value(i)}}, Options{Patterns: []string{"K"}, Dir: dir})
		if err == nil {
			err = d.Write()
		}
		return err
	}
	// The file exists before the reader starts: from then on a rename over
	// it must never let it vanish, not even for an instant.
	wantErr(t, write(0), nil)

	var done atomic.Bool
	var reads, absent, bad int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for reads < maxReads && !done.Load() {
			b, err := os.ReadFile(p)
			reads++
			switch {
			case errors.Is(err, fs.ErrNotExist):
				absent++
			case err != nil:
				bad++
			case !complete(b):
				bad++
			}
		}
	}()
	var werr error
	for i := 1; i < writes && werr == nil; i++ {
		werr = write(i)
	}
	done.Store(true)
	wg.Wait()
	wantErr(t, werr, nil)
	if bad > 0 || absent > 0 {
		t.Errorf("%d of %d reads saw a partial or mixed file, %d saw none", bad, reads, absent)
	}
	t.Logf("%d writes, %d reads", writes, reads)
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sameValue(t, "K", got, []byte(value(writes-1)))
}

func TestSymlinkedDirRefused(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	vars := []shimexec.Var{{Name: "K", Value: "value-one"}}
	_, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: link})
	wantErr(t, err, ErrUnsafeDir)
	if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not say why", err)
	}

	// The swap happens between Plan and Write.
	swapped := filepath.Join(base, "swapped")
	d, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: swapped})
	wantErr(t, err, nil)
	if err := os.Symlink(real, swapped); err != nil {
		t.Fatal(err)
	}
	wantErr(t, d.Write(), ErrUnsafeDir)
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("%d entries written through the symlink", len(entries))
	}
}

// TestDirSwappedAfterOpen: once the directory is open, replacing its path by
// a symlink to somewhere else does not move the writes.
func TestDirSwappedAfterOpen(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "secrets")
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	dh, err := openPrivateDir(dir)
	wantErr(t, err, nil)
	defer dh.close()
	moved := filepath.Join(base, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, dir); err != nil {
		t.Fatal(err)
	}
	err = dh.writeFile("K", func(w io.Writer) error { _, err := io.WriteString(w, "value-one"); return err })
	wantErr(t, err, nil)
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("%d entries landed in the symlink's target", len(entries))
	}
	got, err := os.ReadFile(filepath.Join(moved, "K"))
	if err != nil {
		t.Fatal(err)
	}
	sameValue(t, "K", got, []byte("value-one"))
}

func TestPlantedSymlinkAtKeyReplaced(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "K")); err != nil {
		t.Fatal(err)
	}
	d, err := Plan([]shimexec.Var{{Name: "K", Value: "value-one"}}, Options{Patterns: []string{"K"}, Dir: dir})
	wantErr(t, err, nil)
	wantErr(t, d.Write(), nil)
	got, _ := os.ReadFile(victim)
	sameValue(t, "victim", got, []byte("precious"))
	checkMode(t, filepath.Join(dir, "K"), 0o400) // a regular file now, not the link
	got, _ = os.ReadFile(filepath.Join(dir, "K"))
	sameValue(t, "K", got, []byte("value-one"))
}

func TestPlantedSymlinkAtTempName(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	const planted = ".phase-shim-PLANTED.tmp"
	if err := os.Symlink(victim, filepath.Join(dir, planted)); err != nil {
		t.Fatal(err)
	}
	old := tempName
	t.Cleanup(func() { tempName = old })

	t.Run("next name used", func(t *testing.T) {
		calls := 0
		tempName = func() string {
			calls++
			if calls == 1 {
				return planted
			}
			return old()
		}
		d, err := Plan([]shimexec.Var{{Name: "K", Value: "value-one"}}, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, nil)
		wantErr(t, d.Write(), nil)
		if calls != 2 {
			t.Errorf("%d temporary names tried, want 2", calls)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "K"))
		sameValue(t, "K", got, []byte("value-one"))
	})
	t.Run("always planted", func(t *testing.T) {
		tempName = func() string { return planted }
		d, err := Plan([]shimexec.Var{{Name: "K2", Value: "value-one"}}, Options{Patterns: []string{"K2"}, Dir: dir})
		wantErr(t, err, nil)
		wantErr(t, d.Write(), ErrWrite)
		if _, err := os.Lstat(filepath.Join(dir, "K2")); !os.IsNotExist(err) {
			t.Errorf("K2 exists after a failed write (err %v)", err)
		}
	})
	got, _ := os.ReadFile(victim)
	sameValue(t, "victim", got, []byte("precious"))
	if st, err := os.Lstat(filepath.Join(dir, planted)); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the planted symlink was removed or replaced (err %v); it is not ours to touch", err)
	}
}

func TestUnsafeDirRefused(t *testing.T) {
	vars := []shimexec.Var{{Name: "K", Value: "value-one"}}
	for _, mode := range []fs.FileMode{0o777, 0o750, 0o705, 0o701, 0o1777} {
		dir := filepath.Join(t.TempDir(), "secrets")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(dir, uint32(mode)); err != nil {
			t.Fatal(err)
		}
		_, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, ErrUnsafeDir)
		// Made unsafe after Plan: Write checks again on the open directory.
		if err := unix.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		d, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, nil)
		if err := unix.Chmod(dir, uint32(mode)); err != nil {
			t.Fatal(err)
		}
		wantErr(t, d.Write(), ErrUnsafeDir)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("mode %04o: %d entries written", mode, len(entries))
		}
	}

	t.Run("not a directory", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "secrets")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: f})
		wantErr(t, err, ErrUnsafeDir)
	})
	t.Run("root directory", func(t *testing.T) {
		d := &Delivery{Dir: "/", Files: []File{{Key: "K"}}, values: []string{"value-one"}}
		wantErr(t, d.Write(), ErrUnsafeDir)
	})
	t.Run("owned by another user", func(t *testing.T) {
		requireRoot(t)
		dir := filepath.Join(t.TempDir(), "secrets")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, ErrUnsafeDir)
		if !strings.Contains(err.Error(), "65534") {
			t.Errorf("error %q does not name the owner", err)
		}
	})
	t.Run("key is a directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "secrets")
		if err := os.MkdirAll(filepath.Join(dir, "K"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		d, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: dir})
		wantErr(t, err, nil)
		err = d.Write()
		wantErr(t, err, ErrWrite)
		noValueIn(t, err, "value-one")
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%d entries after a failed write, want only K (no temporary leftover)", len(entries))
		}
	})
}

func TestFsWarning(t *testing.T) {
	tests := []struct {
		fsType uint32
		warn   bool
	}{
		{unix.TMPFS_MAGIC, false},
		{unix.RAMFS_MAGIC, false},
		{unix.EXT4_SUPER_MAGIC, true},
		{unix.OVERLAYFS_SUPER_MAGIC, true},
		{unix.XFS_SUPER_MAGIC, true},
		{unix.NFS_SUPER_MAGIC, true},
	}
	for _, tc := range tests {
		w := fsWarning("/d", tc.fsType)
		if (w != "") != tc.warn {
			t.Errorf("type %#x: warning %q, want one: %v", tc.fsType, w, tc.warn)
		}
		if w != "" && !strings.Contains(w, "/d") {
			t.Errorf("warning %q does not name the directory", w)
		}
	}
}

func TestTmpfsWarningOnRealFilesystems(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || uint32(st.Type) != unix.TMPFS_MAGIC {
		t.Log("no tmpfs at /dev/shm; checking only the disk side")
	} else {
		if w := TmpfsWarning("/dev/shm"); w != "" {
			t.Errorf("tmpfs /dev/shm: %q", w)
		}
		// Not created yet: judged by the parent it would be created in.
		if w := TmpfsWarning("/dev/shm/phase-shim-nonexistent/x"); w != "" {
			t.Errorf("future dir on tmpfs: %q", w)
		}
		dir, err := os.MkdirTemp("/dev/shm", "deliver-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		d, err := Plan([]shimexec.Var{{Name: "K", Value: "value-one"}}, Options{Patterns: []string{"K"}, Dir: filepath.Join(dir, "s")})
		wantErr(t, err, nil)
		wantErr(t, d.Write(), nil)
		if len(d.Warnings) != 0 {
			t.Errorf("warnings on tmpfs: %q", d.Warnings)
		}
	}
	tmp := t.TempDir()
	if err := unix.Statfs(tmp, &st); err != nil {
		t.Fatal(err)
	}
	onTmpfs := uint32(st.Type) == unix.TMPFS_MAGIC || uint32(st.Type) == unix.RAMFS_MAGIC
	d, err := Plan([]shimexec.Var{{Name: "K", Value: "value-one"}}, Options{Patterns: []string{"K"}, Dir: filepath.Join(tmp, "s")})
	wantErr(t, err, nil)
	if got := len(d.Warnings) > 0; got == onTmpfs {
		t.Errorf("Plan warnings %q on %s (tmpfs: %v)", d.Warnings, tmp, onTmpfs)
	}
	wantErr(t, d.Write(), nil)
	if got := len(d.Warnings) > 0; got == onTmpfs {
		t.Errorf("Write warnings %q on %s (tmpfs: %v)", d.Warnings, tmp, onTmpfs)
	}
}
