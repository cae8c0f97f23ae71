//go:build linux

package supervise

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run starts path as a child with argv and envp, supervises it until it
// exits and returns its exit status, or 128+n when signal n killed it.
//
// Without a controlling terminal the child leads its own process group and
// every forwarded signal goes to that group, so a shell-less app with
// workers is stopped as a whole. When this process is the foreground job of
// its terminal the child's group becomes the foreground group instead: the
// terminal then delivers Ctrl-C to the child's group alone (exactly once),
// and signals sent to the shim are forwarded to the child alone.
//
// Run returns as soon as the main child has exited and every zombie present
// at that moment is reaped; descendants still running are left alone (as
// PID 1 the kernel kills them when the shim exits). While it runs, Run
// collects every child of the process (wait4(-1)): nothing else in the
// program may start or wait for children meanwhile.
func Run(path string, argv, envp []string, o Options) (exitCode int, err error) {
	// Subscribe before the child exists: a SIGTERM arriving between start and
	// subscription would otherwise kill the shim with Go's default action and
	// orphan the child.
	sigs := make(chan os.Signal, 128)
	signal.Notify(sigs, forwardedSignals()...)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		// Not fatal: as PID 1 orphans come to us anyway; elsewhere they go to
		// the next subreaper, which is what would happen without the shim.
		o.debugf("cannot become a child subreaper: %v", err)
	}

	if testHookBeforeStart != nil {
		testHookBeforeStart()
	}
	tty := foregroundTTY()
	sys := &syscall.SysProcAttr{Setpgid: true}
	if tty >= 0 {
		sys.Foreground = true
		sys.Ctty = tty // fds 0-2 keep their numbers in the child
	}
	pid, err := startWithEmptyMask(path, argv, &syscall.ProcAttr{
		Env:   envp,
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil {
		// Named as the user gave it: path came from a PATH search, and PATH
		// may be a secret like any other variable.
		return 0, fmt.Errorf("%w %q: %w", ErrStart, commandName(path, argv), err)
	}
	if tty >= 0 {
		// Give the terminal back whatever happens, or the shell that started
		// the shim would find its terminal owned by a dead process group.
		defer setForeground(tty, unix.Getpgrp())
	}
	s := &supervisor{o: o, pid: pid, tty: tty}
	o.debugf("started pid %d in process group %d (terminal: %t)", pid, pid, tty >= 0)
	return s.loop(sigs), nil
}

func commandName(path string, argv []string) string {
	if len(argv) > 0 && argv[0] != "" {
		return argv[0]
	}
	return path
}

// testHookBeforeStart runs between subscribing to signals and starting the
// child, so a test can land a signal in that window.
var testHookBeforeStart func()

type supervisor struct {
	o   Options
	pid int // the main child, also its process group id
	tty int // controlling terminal fd when the child is the foreground job, else -1
}

func (s *supervisor) loop(sigs <-chan os.Signal) int {
	var (
		killTimer *time.Timer
		killC     <-chan time.Time
	)
	defer func() {
		if killTimer != nil {
			killTimer.Stop()
		}
	}()
	for {
		// Reap on every wake-up, not only on SIGCHLD: os/signal drops a
		// signal when the channel is full, and a missed SIGCHLD must not
		// leave the shim waiting for a child that is already gone.
		if status, done := s.reap(); done {
			return status
		}
		select {
		case sig := <-sigs:
			n := sig.(syscall.Signal)
			if n == unix.SIGCHLD {
				continue
			}
			s.forward(n)
			if (n == unix.SIGTERM || n == unix.SIGINT) && killC == nil && s.o.killTimeout() > 0 {
				killTimer = time.NewTimer(s.o.killTimeout())
				killC = killTimer.C
			}
		case <-killC:
			killC = nil
			s.o.debugf("process group %d outlived the kill timeout (%v): sending SIGKILL", s.pid, s.o.killTimeout())
			if err := unix.Kill(-s.pid, unix.SIGKILL); err != nil {
				s.o.debugf("SIGKILL process group %d: %v", s.pid, err)
			}
		}
	}
}

func (s *supervisor) forward(n syscall.Signal) {
	target := -s.pid
	if s.tty >= 0 {
		// The terminal already signals the whole foreground group; signals
		// sent to the shim go to the child alone so none arrives twice.
		target = s.pid
	}
	if err := unix.Kill(target, n); err != nil {
		// ESRCH: the group is gone between its last exit and our reaping.
		s.o.debugf("forward %s to %d: %v", signalName(n), target, err)
		return
	}
	s.o.debugf("forwarded %s to %d", signalName(n), target)
}

// reap collects every zombie child. It reports the main child's status once
// that child has terminated.
func (s *supervisor) reap() (exitCode int, done bool) {
	flags := unix.WNOHANG
	if s.tty >= 0 {
		flags |= unix.WUNTRACED
	}
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, flags, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || wpid <= 0 {
			// ECHILD: nothing left to wait for; 0: nothing has changed yet.
			return exitCode, done
		}
		switch {
		case wpid != s.pid:
			if !ws.Stopped() {
				s.o.debugf("reaped orphan pid %d (%s)", wpid, describe(ws))
			}
		case ws.Stopped():
			s.suspend(ws.StopSignal())
		case ws.Exited() || ws.Signaled():
			exitCode, done = statusCode(ws), true
			s.o.debugf("child %d terminated (%s): exit status %d", wpid, describe(ws), exitCode)
		}
	}
}

// suspend handles a stop of the foreground child. A stop from the terminal
// (Ctrl-Z, or a background read/write) is mirrored onto the shim so the
// shell that started it sees its job stop and can resume it with fg or bg.
// Without such a shell (the shim leads its own session, as under docker -t
// or sshd) nobody would ever resume it, so the child is continued at once:
// the kernel discards these signals for a process started that way too.
func (s *supervisor) suspend(sig syscall.Signal) {
	if sig != unix.SIGTSTP && sig != unix.SIGTTIN && sig != unix.SIGTTOU {
		// An explicit SIGSTOP (a debugger, kill -STOP) is meant for the child.
		s.o.debugf("child %d stopped by %v", s.pid, signalName(sig))
		return
	}
	if underJobControl() {
		s.o.debugf("child %d stopped by %v: stopping too", s.pid, signalName(sig))
		setForeground(s.tty, unix.Getpgrp())
		// A thread-directed SIGSTOP stops the whole process before this
		// thread returns to user space, so nothing below runs until SIGCONT.
		if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGSTOP); err != nil {
			s.o.debugf("stop self: %v", err)
		}
		// Resumed. After fg the shell made our group the foreground one:
		// hand the terminal to the child again. After bg the child runs in
		// the background, as the shim would have.
		if pg, err := unix.IoctlGetInt(s.tty, unix.TIOCGPGRP); err != nil || pg != unix.Getpgrp() {
			s.o.debugf("resumed in the background")
		} else {
			setForeground(s.tty, s.pid)
		}
	} else {
		s.o.debugf("child %d stopped by %v, no job control shell: continuing it", s.pid, signalName(sig))
	}
	if err := unix.Kill(-s.pid, unix.SIGCONT); err != nil {
		s.o.debugf("continue process group %d: %v", s.pid, err)
	}
}

// underJobControl guesses whether a job-control shell manages the shim: its
// parent sits in the same session but another process group. Otherwise the
// shim's group is orphaned (or the shim is PID 1) and a stopped shim would
// stay stopped forever.
func underJobControl() bool {
	ppid := unix.Getppid()
	if ppid <= 0 {
		return false
	}
	sid, err1 := unix.Getsid(0)
	psid, err2 := unix.Getsid(ppid)
	ppgrp, err3 := unix.Getpgid(ppid)
	return err1 == nil && err2 == nil && err3 == nil && sid == psid && ppgrp != unix.Getpgrp()
}

func statusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// signalName is SIGTERM, or "signal 40" for a real-time signal, which
// unix.SignalName leaves nameless.
func signalName(n syscall.Signal) string {
	if name := unix.SignalName(n); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(n))
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + signalName(ws.Signal())
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

// forwardedSignals lists every signal os/signal can deliver except SIGCHLD
// (ours to act on) and SIGURG (the Go runtime preempts goroutines with it;
// forwarding would pelt the child with signals it never asked for).
// SIGPROF never reaches os/signal, and the runtime keeps signals 32-34 for
// itself and the C libraries (thread cancellation, per-thread setuid, musl's
// sync call), so none of them can be relayed.
func forwardedSignals() []os.Signal {
	var out []os.Signal
	for n := syscall.Signal(1); n <= 64; n++ {
		switch n {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPROF, 32, 33, 34:
			continue
		}
		out = append(out, n)
	}
	return out
}

// startWithEmptyMask forks and execs with every signal unblocked in the
// child. Go's fork restores the mask the forking thread had at fork time,
// and Go threads keep blockable signals (SIGUSR1, SIGPIPE, real-time ones)
// blocked when the shim itself inherited them blocked; a child started with
// such a mask would silently never see those signals. Dispositions need no
// help: the fork resets every signal the runtime handles, and Notify above
// makes the runtime handle all of them, even those inherited as ignored.
func startWithEmptyMask(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
		return 0, fmt.Errorf("clear signal mask: %w", err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) //nolint:errcheck // restoring a mask we just read cannot fail
	return syscall.ForkExec(path, argv, attr)
}

// foregroundTTY returns the standard descriptor that is this process's
// controlling terminal when this process's group is that terminal's
// foreground group, else -1. TIOCGPGRP fails on any terminal that is not the
// caller's controlling one, so a redirected or foreign tty never matches.
func foregroundTTY() int {
	for fd := 0; fd <= 2; fd++ {
		pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err == nil && pg == unix.Getpgrp() {
			return fd
		}
	}
	return -1
}

// setForeground makes pgrp the foreground group of the terminal. A
// background caller would get SIGTTOU (caught, so the ioctl restarts
// forever) unless the signal is blocked on the calling thread.
func setForeground(tty, pgrp int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	sigaddset(&set, unix.SIGTTOU)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, pgrp)
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
}

func sigaddset(set *unix.Sigset_t, n syscall.Signal) {
	w := uint(64)
	if len(set.Val) == 32 { // 32-bit platforms store the set as uint32 words
		w = 32
	}
	i := uint(n - 1)
	set.Val[i/w] |= 1 << (i % w)
}
