package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// maxBinarySize is the release binary's budget (stripped, static).
const maxBinarySize = 7 << 20

// requireRoot skips a test that needs root, or fails it when CI demands
// that it run (PHASE_SHIM_REQUIRE_ROOT=1).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
		t.Fatal("needs root (chroot), and PHASE_SHIM_REQUIRE_ROOT=1 is set")
	}
	t.Skip("needs root (chroot); set PHASE_SHIM_REQUIRE_ROOT=1 to make this a failure")
}

// buildStatic builds a package exactly like the release build does.
func buildStatic(t *testing.T, pkg, out string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// TestReleaseBinary builds the binary exactly as a release is built and
// checks it is what a scratch image needs: no program interpreter, no shared
// libraries, within the size budget, and working in an empty root.
func TestReleaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release binary")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "phase-shim")
	buildStatic(t, ".", bin)
	t.Run("static", func(t *testing.T) { checkStatic(t, bin) })
	t.Run("chroot", func(t *testing.T) { testChroot(t, root) })
}

func checkStatic(t *testing.T, bin string) {
	t.Helper()
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release binary: %d bytes (%.2f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() > maxBinarySize {
		t.Errorf("binary is %d bytes, budget %d", fi.Size(), maxBinarySize)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP program header: it needs a dynamic loader")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		t.Fatalf("reading DT_NEEDED: %v", err)
	}
	if len(libs) > 0 {
		t.Errorf("binary needs shared libraries (DT_NEEDED): %v", libs)
	}
}

// testChroot runs the release binary in a root that holds nothing but
// itself, a static probe and an env file: no /bin/sh, no /etc, no /proc, no
// /tmp, no CA bundle. The probe must get the file's secrets byte for byte.
func testChroot(t *testing.T, root string) {
	requireRoot(t)
	buildStatic(t, "./testdata/probe", filepath.Join(root, "probe"))
	env := "SECRET_KEY?=renamed\n" +
		"QUOTES='it''s \"quoted\"'\n" +
		"DOLLAR='$HOME `id` *'\n" +
		"MULTI=\"a\\nb\\tc  \"\n" +
		"EMOJI='🔑 ключ'\n" +
		"EMPTY=\n"
	want := []string{
		"SECRET_KEY_=renamed",
		"QUOTES=it's \"quoted\"",
		"DOLLAR=$HOME `id` *",
		"MULTI=a\nb\tc  ",
		"EMOJI=🔑 ключ",
		"EMPTY=",
	}
	// The dotenv dialect spells a single quote inside single quotes as \'.
	env = strings.Replace(env, "'it''s", `'it\'s`, 1)
	if err := os.WriteFile(filepath.Join(root, "x.env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (stdout, stderr []byte, code int) {
		t.Helper()
		cmd := &exec.Cmd{
			Path:        "/phase-shim", // resolved inside the chroot
			Args:        append([]string{"/phase-shim"}, args...),
			Env:         []string{}, // empty, not inherited
			Dir:         "/",
			SysProcAttr: &syscall.SysProcAttr{Chroot: root},
		}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("running the shim in the chroot: %v", err)
		}
		return o.Bytes(), e.Bytes(), code
	}

	out, errOut, code := run("--env-file", "/x.env", "--", "/probe", "3")
	if code != 3 {
		t.Fatalf("exit status %d, want the probe's 3; stderr:\n%s", code, errOut)
	}
	got, err := splitEnviron(out)
	if err != nil {
		t.Fatal(err)
	}
	if problems := diffEnviron(got, want, false); len(problems) > 0 {
		t.Errorf("environment in the chroot differs:\n%s", strings.Join(problems, "\n"))
	}
	if !bytes.Contains(errOut, []byte(`phase-shim: injected 6 secrets (file "/x.env"; 1 renamed)`)) {
		t.Errorf("stderr lacks the info line:\n%s", errOut)
	}

	// No PATH and no /bin: a bare name is not found, with a message.
	_, errOut, code = run("--env-file", "/x.env", "--", "sh", "-c", "true")
	if code != 127 || !bytes.Contains(errOut, []byte("command not found")) {
		t.Errorf("bare name in an empty root: status %d, stderr %q; want 127, command not found", code, errOut)
	}
}
