package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trapprobe is an app that handles SIGTERM itself: it writes its PID to
// $PROBE_DIR/ready, waits for SIGTERM, writes $PROBE_DIR/graceful and exits 0.
func trapprobe() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	dir := os.Getenv("PROBE_DIR")
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.Exit(2)
	}
	<-sigs
	if err := os.WriteFile(filepath.Join(dir, "graceful"), nil, 0o600); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

// TestInitPID1 is issue 7's case end to end: the real phase-shim is PID 1 of
// a new PID namespace (as in a container) with --init=auto, which must
// therefore supervise; a SIGTERM sent to it from outside, as docker stop
// does, reaches the app, which exits by itself, and that status is the
// shim's. The supervise package tests the same on Run, with zombies counted.
func TestInitPID1(t *testing.T) {
	requireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// testscript.Main dispatches on the program's base name.
	bin := t.TempDir()
	for _, name := range []string{"phase-shim", "trapprobe"} {
		if err := os.Symlink(self, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, "a.env")
	if err := os.WriteFile(envFile, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(filepath.Join(bin, "phase-shim"), "--init=auto", "--env-file", envFile, "--",
		filepath.Join(bin, "trapprobe"))
	cmd.Env = append(os.Environ(), "PROBE_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start phase-shim in a new PID namespace: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})

	// Bounds keep a broken init from hanging the test; they assert no timing.
	const bound = 10 * time.Second
	ready := filepath.Join(dir, "ready")
	var pid []byte
	for deadline := time.Now().Add(bound); ; time.Sleep(5 * time.Millisecond) {
		if pid, err = os.ReadFile(ready); err == nil && len(pid) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not start within %v\nstderr:\n%s", bound, &stderr)
		}
	}
	if string(pid) == "1" {
		t.Fatalf("the app is PID 1: --init=auto did not supervise although phase-shim was PID 1\nstderr:\n%s", &stderr)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(bound):
		t.Fatalf("phase-shim did not exit within %v of SIGTERM\nstderr:\n%s", bound, &stderr)
	}
	if err != nil {
		t.Errorf("phase-shim: %v, want exit 0 (the app's own status)\nstderr:\n%s", err, &stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "graceful")); err != nil {
		t.Errorf("the app did not shut down by itself: the SIGTERM did not reach it\nstderr:\n%s", &stderr)
	}
	if !strings.Contains(stderr.String(), "phase-shim: injected 1 secret") {
		t.Errorf("no info line on stderr:\n%s", &stderr)
	}
}
