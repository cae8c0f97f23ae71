package exec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the command it execs. The variable below picks a
// role before any test runs:
//
//	exec    act like the shim: build envp from the raw inherited environ and
//	        the corpus, look the command up in PATH, check limits, Exec.
//	raw     call unix.Exec directly with a BIG variable of a given size, to
//	        ask the kernel itself where MAX_ARG_STRLEN lies.
//	report  act like the wrapped command: write PID, argv and the raw
//	        environ to files, exit 42.
const (
	stageVar = "PHASE_SHIM_EXECTEST"
	outVar   = "PHASE_SHIM_EXECTEST_OUT"
	cmdVar   = "PHASE_SHIM_EXECTEST_CMD"
	sizeVar  = "PHASE_SHIM_EXECTEST_SIZE"
)

// fill returns envp padded with FILLn variables so that path, argv and envp
// together cost exactly total bytes the way checkLimits counts them. Every
// variable stays under MAX_ARG_STRLEN so that only the total is at stake.
func fill(path string, argv, envp []string, total int) []string {
	used := len(path) + 1 + (len(argv)+len(envp))*ptrSize
	for _, s := range append(append([]string{}, argv...), envp...) {
		used += len(s) + 1
	}
	r := total - used
	full := MaxArgStrlen()
	for i := 0; r > 2*(full+ptrSize); i++ {
		envp = append(envp, kv(fmt.Sprintf("FILL%d", i), full))
		r -= full + ptrSize
	}
	a := (r - 2*ptrSize) / 2
	envp = append(envp, kv("FILLA", a), kv("FILLB", r-2*ptrSize-a))
	return envp
}

func TestMain(m *testing.M) {
	switch os.Getenv(stageVar) {
	case "exec":
		fail(stageExec())
	case "raw":
		fail(stageRaw())
	case "total":
		fail(stageTotal())
	case "report":
		fail(stageReport())
	}
	os.Exit(m.Run())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stage:", err) // names and sizes only, by construction
	os.Exit(3)
}

// corpus holds the hostile values of the issue, under names a shim would
// pass (sanitized ones and names only Keep would let through).
func corpus() []Var {
	big := make([]byte, 100*1024)
	for i := range big {
		big[i] = "abcdefghij\n"[i%11]
	}
	return []Var{
		{"SECRET_KEY_", "spaces  inside and trailing  ", "phase:/"},
		{"my-key", `both 'single' and "double" quotes`, "phase:/"},
		{"ÜBER", "$HOME and ${HOME} and `id` and $(id)", "phase:/"},
		{"GLOB", "*", "phase:/"},
		{"HASH", "#not a comment", "phase:/"},
		{"EQ", "a=b=c==", "phase:/"},
		{"NL", "\nline1\nline2\n", "phase:/"},
		{"CRLF", "a\r\nb", "phase:/"},
		{"TAB", "\tx\t", "phase:/"},
		{"EMOJI", "🔑🙂", "phase:/"},
		{"EMPTY", "", "phase:/"},
		{"BACKSLASH", `\\n \" \' \`, "phase:/"},
		{"LATIN1", "\xff\xfe not utf-8", "phase:/"},
		{"BIG", string(big), "phase:/"},
		{"DUP", "from the secret", "phase:/"},
		{"HOLD", "lost to nothing", "phase:/"},
	}
}

// rawEnviron reads the environ exactly as execve delivered it: Go's
// os.Environ drops repeated names, and the point is to see them.
func rawEnviron() ([]string, error) {
	b, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

func stageExec() error {
	inherited, err := rawEnviron()
	if err != nil {
		return err
	}
	secrets := append(corpus(), Var{Name: stageVar, Value: "report", Source: "test"})
	envp, _, err := BuildEnv(secrets, EnvOptions{
		Environ: inherited,
		Scrub:   []string{"PHASE_SERVICE_TOKEN", "PHASE_SERVICE_TOKEN_FILE"},
	})
	if err != nil {
		return err
	}
	path, err := LookPath(os.Getenv(cmdVar), envp)
	if err != nil {
		return err
	}
	argv := []string{"the-app", "--flag", "arg with  spaces", "", "ünï"}
	if err := CheckLimits(argv, envp); err != nil {
		return err
	}
	return Exec(path, argv, envp)
}

func stageRaw() error {
	size, err := strconv.Atoi(os.Getenv(sizeVar))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	envp := []string{stageVar + "=report", outVar + "=" + os.Getenv(outVar), kv("BIG", size)}
	err = unix.Exec(self, []string{"raw"}, envp)
	return os.WriteFile(os.Getenv(outVar)+".err", []byte(err.Error()), 0o600)
}

// stageTotal asks the kernel about the total budget: an envp costing exactly
// PHASE_SHIM_EXECTEST_SIZE bytes, and our own verdict on it next to the
// kernel's.
func stageTotal() error {
	total, err := strconv.Atoi(os.Getenv(sizeVar))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out := os.Getenv(outVar)
	argv := []string{"total"}
	envp := fill(self, argv, []string{stageVar + "=report", outVar + "=" + out}, total)
	verdict := "ok"
	if err := CheckLimitsPath(self, argv, envp); err != nil {
		verdict = err.Error()
	}
	if err := os.WriteFile(out+".check", []byte(verdict), 0o600); err != nil {
		return err
	}
	err = unix.Exec(self, argv, envp)
	return os.WriteFile(out+".err", []byte(err.Error()), 0o600)
}

func stageReport() error {
	out := os.Getenv(outVar)
	env, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return err
	}
	args, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{".pid": []byte(strconv.Itoa(os.Getpid())), ".environ": env, ".cmdline": args} {
		if err := os.WriteFile(out+name, b, 0o600); err != nil {
			return err
		}
	}
	os.Exit(42)
	return nil
}

// startSelf runs this test binary with exactly env (duplicates included,
// which os/exec would remove) and returns its PID and exit status.
func startSelf(t *testing.T, env []string) (pid, status int, stderr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	p, err := os.StartProcess(self, []string{self, "-test.run=^$"}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{nil, errf, errf},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(errf.Name())
	return p.Pid, st.ExitCode(), string(b)
}

func readReport(t *testing.T, out string) (pid int, environ, cmdline []byte) {
	t.Helper()
	p, err := os.ReadFile(out + ".pid")
	if err != nil {
		t.Fatalf("the exec'd command left no report: %v", err)
	}
	pid, err = strconv.Atoi(string(p))
	if err != nil {
		t.Fatal(err)
	}
	environ, err = os.ReadFile(out + ".environ")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err = os.ReadFile(out + ".cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return pid, environ, cmdline
}

func split0(b []byte) []string {
	return strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
}

func TestExecReal(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, base := filepath.Dir(self), filepath.Base(self)
	out := filepath.Join(t.TempDir(), "report")
	// The PATH puts a relative and an empty entry first: the command must
	// still be found only in dir.
	path := "PATH=relative/bin::" + dir
	env := []string{
		path,
		"DUP=first",
		"PHASE_SERVICE_TOKEN=pss_service:v2:fake",
		"DUP=second",
		stageVar + "=exec",
		outVar + "=" + out,
		cmdVar + "=" + base,
		"HOLD=inherited",
		"PHASE_SERVICE_TOKEN_FILE=/run/secrets/token",
		"SECRET_KEY_=old",
		"PHASE_SERVICE_TOKEN=again",
	}
	pid, status, stderr := startSelf(t, env)
	if status != 42 {
		t.Fatalf("exit status %d, want 42 (the command's); stderr: %s", status, stderr)
	}
	gotPid, environ, cmdline := readReport(t, out)
	if gotPid != pid {
		t.Errorf("the command ran as PID %d, the shim was %d", gotPid, pid)
	}

	// Expected envp, by hand: inherited order with secrets in place, the
	// first DUP kept and replaced, tokens gone, then new secrets in order.
	byName := map[string]string{}
	for _, v := range corpus() {
		byName[v.Name] = v.Value
	}
	want := []string{
		path,
		"DUP=" + byName["DUP"],
		stageVar + "=report",
		outVar + "=" + out,
		cmdVar + "=" + base,
		"HOLD=" + byName["HOLD"],
		"SECRET_KEY_=" + byName["SECRET_KEY_"],
	}
	for _, v := range corpus() {
		switch v.Name {
		case "DUP", "HOLD", "SECRET_KEY_":
		default:
			want = append(want, v.Name+"="+v.Value)
		}
	}
	wantBytes := []byte(strings.Join(want, "\x00") + "\x00")
	if !bytes.Equal(environ, wantBytes) {
		sameEnv(t, "/proc/self/environ", split0(environ), want)
		t.Errorf("/proc/self/environ: got %d bytes, want %d bytes", len(environ), len(wantBytes))
	}
	wantArgs := "the-app\x00--flag\x00arg with  spaces\x00\x00ünï\x00"
	if string(cmdline) != wantArgs {
		t.Errorf("argv: got %q, want %q", cmdline, wantArgs)
	}
}

// TestKernelArgStrlen asks the running kernel where the per-string limit is,
// so CheckLimits is proven against the real thing and not only our reading
// of fs/exec.c.
func TestKernelArgStrlen(t *testing.T) {
	if ArgMax() < 4*MaxArgStrlen() {
		t.Skipf("stack limit too small (ARG_MAX %d)", ArgMax())
	}
	for _, tc := range []struct {
		size  int
		fits  bool
		check error
	}{
		{MaxArgStrlen(), true, nil},
		{MaxArgStrlen() + 1, false, ErrTooLarge},
	} {
		t.Run(strconv.Itoa(tc.size), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report")
			if err := CheckLimits([]string{"raw"}, []string{kv("BIG", tc.size)}); !errors.Is(err, tc.check) || (err == nil) != (tc.check == nil) {
				t.Errorf("CheckLimits: %v, want %v", err, tc.check)
			}
			_, status, stderr := startSelf(t, []string{stageVar + "=raw", outVar + "=" + out, sizeVar + "=" + strconv.Itoa(tc.size)})
			if tc.fits {
				if status != 42 {
					t.Fatalf("exit %d, want 42: the kernel refused a %d-byte string; stderr: %s", status, tc.size, stderr)
				}
				_, environ, _ := readReport(t, out)
				if n := len(split0(environ)[2]) + 1; n != tc.size {
					t.Errorf("BIG arrived as %d bytes, want %d", n, tc.size)
				}
				return
			}
			b, err := os.ReadFile(out + ".err")
			if err != nil {
				t.Fatalf("exit %d and no error file: %v; stderr: %s", status, err, stderr)
			}
			if string(b) != unix.E2BIG.Error() {
				t.Errorf("kernel said %q, want E2BIG", b)
			}
		})
	}
}

// TestKernelArgMax proves the total budget against the running kernel: an
// exec costing exactly ArgMax bytes (strings, NULs, pointers, file name)
// succeeds, one byte more gets E2BIG, and CheckLimitsPath agrees both times.
func TestKernelArgMax(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int
		fits  bool
	}{
		{"at ARG_MAX", ArgMax(), true},
		{"one byte over", ArgMax() + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report")
			_, status, stderr := startSelf(t, []string{stageVar + "=total", outVar + "=" + out, sizeVar + "=" + strconv.Itoa(tc.total)})
			check, err := os.ReadFile(out + ".check")
			if err != nil {
				t.Fatalf("exit %d, no verdict: %v; stderr: %s", status, err, stderr)
			}
			if tc.fits {
				if string(check) != "ok" {
					t.Errorf("CheckLimitsPath refused what should fit: %s", check)
				}
				if status != 42 {
					kernel, _ := os.ReadFile(out + ".err")
					t.Fatalf("exit %d, want 42: the kernel said %q; stderr: %s", status, kernel, stderr)
				}
				return
			}
			if !strings.HasPrefix(string(check), ErrTooLarge.Error()) {
				t.Errorf("CheckLimitsPath accepted %d bytes over a %d budget: %s", tc.total, ArgMax(), check)
			}
			kernel, err := os.ReadFile(out + ".err")
			if err != nil {
				t.Fatalf("exit %d: the kernel accepted %d bytes over a %d budget", status, tc.total, ArgMax())
			}
			if string(kernel) != unix.E2BIG.Error() {
				t.Errorf("kernel said %q, want E2BIG", kernel)
			}
		})
	}
}

// Exec failures return to the caller, so they can be tried in-process.
func TestExecErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plain"), 0o644)
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte{0, 0, 0, 0, 0, 0, 0, 0}, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(garbage, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		envp []string
		want error
	}{
		{"missing", filepath.Join(dir, "missing"), nil, ErrNotFound},
		{"through a file", filepath.Join(dir, "plain", "x"), nil, ErrNotFound},
		{"not executable", filepath.Join(dir, "plain"), nil, ErrNotExecutable},
		{"directory", dir, nil, ErrNotExecutable},
		{"no format", garbage, nil, ErrNotExecutable},
		{"too large", filepath.Join(dir, "plain"), []string{kv("BIG", MaxArgStrlen()+1)}, ErrTooLarge},
		{"NUL in envp", filepath.Join(dir, "plain"), []string{"A=x\x00y"}, ErrNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Exec(tc.path, []string{"x"}, tc.envp)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Exec: %v, want %v", err, tc.want)
			}
			// path stands for one found through PATH, which may be a
			// secret: the message names the command by argv[0] only.
			if strings.Contains(err.Error(), dir) {
				t.Errorf("Exec error names the resolved path (%d bytes of message)", len(err.Error()))
			}
		})
	}
}
