//go:build linux

package supervise

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// bound caps every wait in these tests so a broken supervisor fails the
// test instead of hanging it; it is not a performance assertion.
const bound = 10 * time.Second

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
		t.Fatal("PHASE_SHIM_REQUIRE_ROOT=1 but not running as root")
	}
	t.Skip("needs root for CLONE_NEWPID/CLONE_NEWNS")
}

// skipUnlessRequired skips for a missing facility, unless CI (which runs
// these tests as root, PHASE_SHIM_REQUIRE_ROOT=1) demands that they run.
func skipUnlessRequired(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
		t.Fatalf("%s, and PHASE_SHIM_REQUIRE_ROOT=1 is set", why)
	}
	t.Skip(why)
}

type initRun struct {
	t              *testing.T
	cmd            *exec.Cmd
	dir            string
	stdout, stderr bytes.Buffer
	done           chan struct{}
	waitErr        error
	ended          time.Time
}

// startInit launches the test binary as PID 1 of a new PID and mount
// namespace, where it runs Run on the helper role child.
func startInit(t *testing.T, child string, env ...string) *initRun {
	t.Helper()
	requireRoot(t)
	return launch(t, "init", &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL, // the namespace dies with the test
	}, nil, append([]string{"SUPERVISE_CHILD=" + child, "SUPERVISE_MOUNT_PROC=1"}, env...)...)
}

func launch(t *testing.T, helper string, sys *syscall.SysProcAttr, stdin *os.File, env ...string) *initRun {
	t.Helper()
	r := &initRun{t: t, dir: t.TempDir(), done: make(chan struct{})}
	r.cmd = exec.Command(selfExe())
	r.cmd.Env = append(helperEnviron(helper), "SUPERVISE_DIR="+r.dir)
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if stdin != nil {
		r.cmd.Stdin = stdin
	}
	r.cmd.SysProcAttr = sys
	if err := r.cmd.Start(); err != nil {
		if errors.Is(err, fs.ErrPermission) && os.Getenv("PHASE_SHIM_REQUIRE_ROOT") != "1" {
			t.Skipf("cannot create namespaces here: %v", err)
		}
		t.Fatalf("start %s: %v", helper, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		r.ended = time.Now()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill() // PID 1 dying takes the namespace with it
			<-r.done
		}
	})
	return r
}

// waitFile waits for a helper's marker file.
func (r *initRun) waitFile(name string) {
	r.t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(r.dir, name)); err == nil {
			return
		}
		select {
		case <-r.done:
			// The helper may have written the marker and exited since the
			// Stat above: only a marker still missing now is a failure.
			if r.exists(name) {
				return
			}
			r.t.Fatalf("init ended before %q appeared\nstdout:\n%s\nstderr:\n%s", name, &r.stdout, &r.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	r.t.Fatalf("%q did not appear within %v\nstderr:\n%s", name, bound, &r.stderr)
}

func (r *initRun) exists(name string) bool {
	_, err := os.Stat(filepath.Join(r.dir, name))
	return err == nil
}

// wait returns the key=value lines the init printed.
func (r *initRun) wait() map[string]string {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(bound):
		_ = r.cmd.Process.Kill()
		<-r.done
		r.t.Fatalf("init did not finish within %v\nstderr:\n%s", bound, &r.stderr)
	}
	if r.waitErr != nil {
		r.t.Fatalf("init: %v\nstdout:\n%s\nstderr:\n%s", r.waitErr, &r.stdout, &r.stderr)
	}
	return parseKV(r.stdout.String())
}

func parseKV(s string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func (r *initRun) check(got map[string]string, want map[string]string) {
	r.t.Helper()
	sub := map[string]string{}
	for k := range want {
		sub[k] = got[k]
	}
	if d := cmp.Diff(want, sub); d != "" {
		r.t.Errorf("init output (-want +got):\n%s\nstdout:\n%s\nstderr:\n%s", d, &r.stdout, &r.stderr)
	}
}

// TestExitStatus: the child's own status, or 128+n for a signal, becomes
// the init's; no zombie is left in the namespace.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		child string
		want  string
	}{
		{"exit42", "42"},
		{"exit0", "0"},
		{"selfkill", "137"},
	} {
		t.Run(tc.child, func(t *testing.T) {
			r := startInit(t, tc.child)
			r.check(r.wait(), map[string]string{"pid1": "true", "exit": tc.want, "zombies": "0"})
		})
	}
}

// TestSIGTERMGraceful sends SIGTERM to the namespace's PID 1 from outside,
// as docker stop does; the trapping app (and its worker in the same group)
// shut down by themselves.
func TestSIGTERMGraceful(t *testing.T) {
	r := startInit(t, "trap", "SUPERVISE_SPAWN=trap")
	r.waitFile("ready")
	r.waitFile("worker-ready")
	sent := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := r.wait()
	t.Logf("SIGTERM to PID 1 -> app exited and init returned in %v", r.ended.Sub(sent))
	r.check(got, map[string]string{"exit": "0", "zombies": "0"})
	for _, m := range []string{"graceful", "worker-graceful"} {
		if !r.exists(m) {
			t.Errorf("%s: marker missing, the signal did not reach it", m)
		}
	}
}

func TestSIGTERMUntrapped(t *testing.T) {
	r := startInit(t, "notrap")
	r.waitFile("ready")
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.check(r.wait(), map[string]string{"exit": "143", "zombies": "0"})
}

// TestKillTimeout: an app ignoring SIGTERM is SIGKILLed once the timeout
// passes.
func TestKillTimeout(t *testing.T) {
	r := startInit(t, "ignoreterm", "SUPERVISE_KILL_TIMEOUT=300ms")
	r.waitFile("ready")
	sent := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := r.wait()
	t.Logf("kill timeout 300ms: init returned %v after SIGTERM", r.ended.Sub(sent))
	r.check(got, map[string]string{"exit": "137", "zombies": "0"})
	if !strings.Contains(r.stderr.String(), "sending SIGKILL") {
		t.Errorf("no escalation in the debug log:\n%s", &r.stderr)
	}
}

// TestOrphansReaped: a grandchild orphaned while the app still runs is
// reaped by the init (its /proc entry vanishes), so no zombie piles up.
func TestOrphansReaped(t *testing.T) {
	r := startInit(t, "orphaner")
	got := r.wait()
	r.check(got, map[string]string{"orphan": "reaped", "exit": "0", "zombies": "0"})
	if !strings.Contains(r.stderr.String(), "reaped orphan pid "+got["orphan-pid"]) {
		t.Errorf("orphan %s not reaped by the init:\n%s", got["orphan-pid"], &r.stderr)
	}
}

// TestChildSignalState: the child starts with no blocked and no ignored
// signal even when the shim inherited both, which plain os/exec would pass
// on. cat is a C program that touches no signal, so /proc/self/status shows
// exactly what it inherited.
func TestChildSignalState(t *testing.T) {
	if _, err := exec.LookPath("cat"); err != nil {
		skipUnlessRequired(t, "no cat in PATH")
	}
	c := exec.Command(selfExe())
	c.Env = append(helperEnviron("blockexec"), "SUPERVISE_CHILD=cat-status", "SUPERVISE_CONTROL=1")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, &stderr)
	}
	kv := parseKV(string(out))
	t.Logf("plain os/exec child of the same process: SigBlk=%s SigIgn=%s", kv["control-SigBlk"], kv["control-SigIgn"])
	if kv["control-SigBlk"] == zeroMask || kv["control-SigIgn"] == zeroMask {
		t.Errorf("the setup did not take: control SigBlk=%s SigIgn=%s", kv["control-SigBlk"], kv["control-SigIgn"])
	}
	got := map[string]string{
		"SigBlk": statusField(string(out), "SigBlk"),
		"SigIgn": statusField(string(out), "SigIgn"),
		"exit":   kv["exit"],
	}
	want := map[string]string{"SigBlk": zeroMask, "SigIgn": zeroMask, "exit": "0"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("child signal state (-want +got):\n%s\nstderr:\n%s", d, &stderr)
	}
}

const zeroMask = "0000000000000000"

func TestForwardedSignals(t *testing.T) {
	got := map[syscall.Signal]bool{}
	for _, s := range forwardedSignals() {
		got[s.(syscall.Signal)] = true
	}
	for _, s := range []syscall.Signal{unix.SIGCHLD, unix.SIGURG, unix.SIGKILL, unix.SIGSTOP} {
		if got[s] {
			t.Errorf("%v must not be forwarded", unix.SignalName(s))
		}
	}
	for _, s := range []syscall.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1,
		unix.SIGUSR2, unix.SIGWINCH, unix.SIGTSTP, unix.SIGCONT, unix.SIGPIPE, unix.SIGALRM, syscall.Signal(36), 64} {
		if !got[s] {
			t.Errorf("%v (%d) is not forwarded", unix.SignalName(s), int(s))
		}
	}
}

func TestStartError(t *testing.T) {
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/nonexistent/phase-shim-test", fs.ErrNotExist},
		{t.TempDir(), fs.ErrPermission}, // a directory: EACCES
	} {
		code, err := Run(tc.path, []string{"x"}, nil, Options{})
		if !errors.Is(err, ErrStart) || !errors.Is(err, tc.want) || code != 0 {
			t.Errorf("Run(%q) = %d, %v; want ErrStart wrapping %v", tc.path, code, err, tc.want)
		}
		// A path found through PATH shows a PATH entry, which may be a
		// secret: the error names argv[0].
		if err != nil && strings.Contains(err.Error(), tc.path) {
			t.Errorf("Run(%q): the error names the resolved path", tc.path)
		}
	}
}

func TestIsPID1(t *testing.T) {
	if got, want := IsPID1(), os.Getpid() == 1; got != want {
		t.Errorf("IsPID1() = %t outside a new namespace, want %t", got, want)
	}
	t.Run("new-pid-namespace", func(t *testing.T) {
		r := startInit(t, "exit0")
		r.check(r.wait(), map[string]string{"pid1": "true"})
	})
}

func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipUnlessRequired(t, "no pseudo-terminals: "+err.Error())
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipUnlessRequired(t, "open pty slave: "+err.Error())
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestTerminal: with a controlling terminal the app is the foreground job,
// Ctrl-C reaches it exactly once (the probe's exit status counts SIGINTs),
// Ctrl-Z stops and resumes it, and a SIGTERM sent to the shim still reaches
// it. "session-leader" is docker run -t / sshd (no shell to resume a
// stopped job); "under-shell" has a job-control shell that runs fg.
func TestTerminal(t *testing.T) {
	for _, tc := range []struct {
		name, helper string
		jobControl   bool
	}{
		{"session-leader", "init", false},
		{"under-shell", "session", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			r := launch(t, tc.helper, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, slave,
				"SUPERVISE_CHILD=ttyprobe")
			key := func(b byte) {
				t.Helper()
				if _, err := master.Write([]byte{b}); err != nil {
					t.Fatalf("write to terminal: %v", err)
				}
			}
			r.waitFile("ready")
			if !r.exists("foreground") {
				t.Errorf("the app is not the terminal's foreground job")
			}
			key(0x03) // ^C
			r.waitFile("sigint-1")
			key(0x1a) // ^Z
			if tc.jobControl {
				r.waitFile("init-stopped")
			}
			r.waitFile("cont-1")
			key(0x03) // answered only if the app runs in the foreground again
			r.waitFile("sigint-2")

			pid := r.cmd.Process.Pid
			if tc.jobControl {
				b, err := os.ReadFile(filepath.Join(r.dir, "init.pid"))
				if err != nil {
					t.Fatal(err)
				}
				if pid, err = strconv.Atoi(string(b)); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Kill(pid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"exit": "12"} // 10 + two SIGINTs, none doubled
			if tc.jobControl {
				want["session-init-exit"] = "0"
			}
			r.check(r.wait(), want)
		})
	}
}

// TestSignalBeforeStart: a SIGTERM that reaches the shim after Run has
// subscribed but before the child exists is forwarded once the child runs,
// instead of being lost (which would leave this untrapping child sleeping
// for an hour) or killing the shim. Runs in this process: it needs no
// namespace.
func TestSignalBeforeStart(t *testing.T) {
	testHookBeforeStart = func() { _ = unix.Kill(os.Getpid(), unix.SIGTERM) }
	defer func() { testHookBeforeStart = nil }()
	done := make(chan struct{})
	var (
		code int
		err  error
	)
	go func() {
		defer close(done)
		code, err = Run(selfExe(), []string{"supervise-notrap"},
			append(helperEnviron("notrap"), "SUPERVISE_DIR="+t.TempDir()), Options{})
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("Run did not return within %v: the early SIGTERM was lost", bound)
	}
	if err != nil || code != 143 {
		t.Errorf("Run = %d, %v; want 143 (child killed by the forwarded SIGTERM)", code, err)
	}
}

// TestEverySignalForwarded sends each forwardable signal to PID 1 from
// outside the namespace; the app must catch every one of them.
func TestEverySignalForwarded(t *testing.T) {
	r := startInit(t, "sigecho", "SUPERVISE_KILL_TIMEOUT=-1s")
	r.waitFile("ready")
	for _, s := range forwardedSignals() {
		n := s.(syscall.Signal)
		if err := r.cmd.Process.Signal(n); err != nil {
			t.Fatalf("send %v: %v", unix.SignalName(n), err)
		}
		r.waitFile("sig-" + strconv.Itoa(int(n)))
	}
	r.check(r.wait(), map[string]string{"exit": "0", "zombies": "0"})
	t.Logf("%d signals forwarded", len(forwardedSignals()))
}
