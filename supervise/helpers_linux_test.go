//go:build linux

package supervise

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The tests re-execute the test binary in helper roles chosen by
// SUPERVISE_HELPER: "init" runs Run (as PID 1 of a fresh namespace in most
// tests) and the other roles are the supervised applications.
const helperEnv = "SUPERVISE_HELPER"

func runHelper(mode string) int {
	switch mode {
	case "init":
		return helperInit()
	case "blockexec":
		return helperBlockExec()
	case "trap":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, unix.SIGTERM)
		if kid := os.Getenv("SUPERVISE_SPAWN"); kid != "" {
			// A worker in the same process group: the group must get the
			// forwarded signal, not just the leader.
			c := helperCmd(kid, "SUPERVISE_NAME=worker", "SUPERVISE_SPAWN=")
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "spawn worker:", err)
				return 2
			}
			mark("ready")
			<-sigs
			_ = c.Wait() // the worker got its own SIGTERM from the shim
		} else {
			mark("ready")
			<-sigs
		}
		mark("graceful")
		return 0
	case "notrap":
		mark("ready")
		time.Sleep(time.Hour)
		return 2
	case "ignoreterm":
		signal.Ignore(unix.SIGTERM)
		mark("ready")
		time.Sleep(time.Hour)
		return 2
	case "selfkill":
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		time.Sleep(time.Hour)
		return 2
	case "exit42":
		return 42
	case "exit0":
		return 0
	case "orphaner":
		return helperOrphaner()
	case "spawner":
		// Start a grandchild and exit without waiting for it: the
		// grandchild is orphaned and its zombie becomes the init's business.
		c := helperCmd("exit0")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "spawn:", err)
			return 2
		}
		fmt.Println(c.Process.Pid)
		return 0
	case "ttyprobe":
		return helperTTYProbe()
	case "session":
		return helperSession()
	case "sigecho":
		// Catch every forwardable signal, mark each one, exit once all came.
		sigs := make(chan os.Signal, 128)
		want := forwardedSignals()
		signal.Notify(sigs, want...)
		mark("ready")
		seen := map[os.Signal]bool{}
		for s := range sigs {
			if !seen[s] {
				seen[s] = true
				mark("sig-" + strconv.Itoa(int(s.(syscall.Signal))))
			}
			if len(seen) == len(want) {
				return 0
			}
		}
		return 2
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperCmd runs the test binary in another helper role, inheriting stdio.
func helperCmd(mode string, env ...string) *exec.Cmd {
	c := exec.Command(selfExe())
	c.Env = append(helperEnviron(mode), env...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	return c
}

func helperEnviron(mode string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, helperEnv+"="+mode)
}

var exePath string

func selfExe() string {
	if exePath == "" {
		p, err := os.Executable()
		if err != nil {
			panic(err)
		}
		exePath = p
	}
	return exePath
}

// mark creates a marker file in SUPERVISE_DIR, named after the role's
// SUPERVISE_NAME so two roles in one test do not collide.
func mark(what string) {
	name := what
	if n := os.Getenv("SUPERVISE_NAME"); n != "" {
		name = n + "-" + what
	}
	_ = os.WriteFile(filepath.Join(os.Getenv("SUPERVISE_DIR"), name), nil, 0o644)
}

func helperInit() int {
	exe := selfExe()
	if os.Getenv("SUPERVISE_MOUNT_PROC") == "1" {
		// A private mount namespace with a /proc of the new PID namespace,
		// so pids printed and scanned here are the namespace's own.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Printf("err=make / private: %v\n", err)
			return 2
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			fmt.Printf("err=mount proc: %v\n", err)
			return 2
		}
	}
	fmt.Printf("pid1=%t\n", IsPID1())

	child := os.Getenv("SUPERVISE_CHILD")
	path, argv := exe, []string{"supervise-" + child}
	if child == "cat-status" {
		cat, err := exec.LookPath("cat")
		if err != nil {
			fmt.Printf("err=%v\n", err)
			return 2
		}
		path, argv = cat, []string{"cat", "/proc/self/status"}
		if os.Getenv("SUPERVISE_CONTROL") == "1" {
			// What a plain os/exec child of this process sees, for the
			// report: it shows what Run has to undo.
			out, err := exec.Command(cat, "/proc/self/status").Output()
			if err != nil {
				fmt.Printf("err=control: %v\n", err)
				return 2
			}
			for _, f := range []string{"SigBlk", "SigIgn"} {
				fmt.Printf("control-%s=%s\n", f, statusField(string(out), f))
			}
		}
	}
	var o Options
	if kt := os.Getenv("SUPERVISE_KILL_TIMEOUT"); kt != "" {
		d, err := time.ParseDuration(kt)
		if err != nil {
			fmt.Printf("err=%v\n", err)
			return 2
		}
		o.KillTimeout = d
	}
	o.Debugf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "init: "+format+"\n", args...)
	}
	code, err := Run(path, argv, helperEnviron(child), o)
	if err != nil {
		fmt.Printf("err=%v\n", err)
	}
	fmt.Printf("exit=%d\n", code)
	if os.Getenv("SUPERVISE_MOUNT_PROC") == "1" {
		fmt.Printf("zombies=%d\n", countZombies())
	}
	return 0
}

// helperBlockExec starts the init the way a careless parent would: with
// signals blocked and ignored, both of which survive execve.
func helperBlockExec() int {
	runtime.LockOSThread()
	var set unix.Sigset_t
	for _, s := range []syscall.Signal{unix.SIGTERM, unix.SIGUSR1, unix.SIGHUP, unix.SIGPIPE, syscall.Signal(36)} {
		sigaddset(&set, s)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		fmt.Printf("err=block: %v\n", err)
		return 2
	}
	signal.Ignore(unix.SIGINT, unix.SIGHUP, unix.SIGUSR2, unix.SIGQUIT)
	err := unix.Exec(selfExe(), []string{"supervise-init"}, helperEnviron("init"))
	fmt.Printf("err=exec: %v\n", err)
	return 2
}

func helperOrphaner() int {
	c := exec.Command(selfExe())
	c.Env = helperEnviron("spawner")
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		fmt.Println("orphan=spawner failed:", err)
		return 2
	}
	pid := strings.TrimSpace(string(out))
	fmt.Printf("orphan-pid=%s\n", pid)
	// The orphan is not ours to wait for: only the init can remove it.
	// /proc/PID stays while it is a zombie and vanishes once reaped.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			fmt.Println("orphan=reaped")
			return 0
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("orphan=still present after 10s")
	return 3
}

// helperTTYProbe marks whether its process group owns the terminal on
// stdin, then counts SIGINTs (and SIGCONTs) until a SIGTERM arrives; its exit
// status is 10 plus the number of SIGINTs.
func helperTTYProbe() int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGCONT)
	if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pg == unix.Getpgrp() {
		mark("foreground")
	}
	mark("ready")
	ints, conts := 0, 0
	for s := range sigs {
		switch s {
		case unix.SIGTERM:
			return 10 + ints
		case unix.SIGINT:
			ints++
			mark("sigint-" + strconv.Itoa(ints))
		case unix.SIGCONT:
			conts++
			mark("cont-" + strconv.Itoa(conts))
		}
	}
	return 2
}

// helperSession plays a job-control shell on the terminal it leads: it runs
// the init as a foreground job and, when the job stops, notes it and resumes
// it in the foreground as fg would.
func helperSession() int {
	c := helperCmd("init")
	c.SysProcAttr = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
	if err := c.Start(); err != nil {
		fmt.Printf("err=start init: %v\n", err)
		return 2
	}
	pid := c.Process.Pid
	_ = os.WriteFile(filepath.Join(os.Getenv("SUPERVISE_DIR"), "init.pid"), []byte(strconv.Itoa(pid)), 0o644)
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WUNTRACED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || wpid != pid {
			fmt.Printf("err=wait init: %v\n", err)
			return 2
		}
		if !ws.Stopped() {
			fmt.Printf("session-init-exit=%d\n", statusCode(ws))
			return 0
		}
		mark("init-stopped")
		setForeground(0, pid)
		_ = unix.Kill(-pid, unix.SIGCONT)
	}
}

func statusField(status, field string) string {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func countZombies() int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range dirs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && len(data) > i+2 && data[i+2] == 'Z' {
			n++
		}
	}
	return n
}
