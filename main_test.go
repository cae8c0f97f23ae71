package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/phase-shim/phase-shim/internal/secretdiff"
)

// TestMain turns the test binary into the commands the scripts run: the real
// phase-shim (whose run really execve's) and small probes for the command it
// starts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"phase-shim": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
		"envdump":    envdump,
		"pidprobe":   pidprobe,
		"trapprobe":  trapprobe,
	})
}

// envdump writes /proc/self/environ exactly as the kernel holds it (to the
// file named by its argument, else stdout): os.Environ would hide a repeated
// name and cannot show what execve really delivered.
func envdump() {
	b, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "envdump:", err)
		os.Exit(2)
	}
	if len(os.Args) > 1 {
		err = os.WriteFile(os.Args[1], b, 0o600)
	} else {
		_, err = os.Stdout.Write(b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "envdump:", err)
		os.Exit(2)
	}
}

// pidprobe writes its own PID to the file named by its argument, then exits
// with the status given as the second argument (default 0).
func pidprobe() {
	if err := os.WriteFile(os.Args[1], []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "pidprobe:", err)
		os.Exit(2)
	}
	code := 0
	if len(os.Args) > 2 {
		code, _ = strconv.Atoi(os.Args[2])
	}
	os.Exit(code)
}

// extraSetup lets other owners' test files (main_<topic>_test.go) prepare
// their scripts in testdata/script without editing this file: append from
// an init function.
var extraSetup []func(*testscript.Env) error

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			// BIN lets a script run a probe by absolute path under `env -i`,
			// where no PATH exists to find it.
			shim, err := exec.LookPath("phase-shim")
			if err != nil {
				return err
			}
			e.Setenv("BIN", filepath.Dir(shim))
			if err := copyDir(filepath.Join("testdata", "corpus"), filepath.Join(e.WorkDir, "corpus")); err != nil {
				return err
			}
			if err := setupPhase(e); err != nil {
				return err
			}
			for _, f := range extraSetup {
				if err := f(e); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":   cmdStatus,
			"envcmp":   cmdEnvcmp,
			"bigvalue": cmdBigvalue,
			"novalues": cmdNovalues,
			"bigpem":   cmdBigpem,
			"samefile": cmdSamefile,
			"filemode": cmdFilemode,
		},
	})
}

// copyDir copies the flat directory src to dst (the shared corpus, so each
// script reads the same files instead of keeping its own copy).
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// status N CMD ARGS... runs CMD and requires exit status N. stdout and stderr
// are kept for the `stdout`/`stderr` checks that follow.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: bad number %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("status: %v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// envcmp [-unordered] [-ignore A,B] GOT WANT.json... compares a raw environ
// dump with the "NAME=VALUE" strings listed in the JSON files, byte for byte
// (NUL-terminated, in order unless -unordered). Like every helper that
// touches secrets it reports names and lengths, never a value.
func cmdEnvcmp(ts *testscript.TestScript, neg bool, args []string) {
	unordered := false
	ignore := map[string]bool{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-unordered":
			unordered = true
			args = args[1:]
		case "-ignore":
			if len(args) < 2 {
				ts.Fatalf("envcmp: -ignore needs a list")
			}
			for _, n := range strings.Split(args[1], ",") {
				ignore[n] = true
			}
			args = args[2:]
		default:
			ts.Fatalf("envcmp: unknown option %s", args[0])
		}
	}
	if len(args) < 2 {
		ts.Fatalf("usage: envcmp [-unordered] [-ignore A,B] got.environ want.json...")
	}
	raw, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var want []string
	for _, f := range args[1:] {
		var w []string
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		if err := json.Unmarshal(b, &w); err != nil {
			ts.Fatalf("envcmp: %s: %v", f, err)
		}
		want = append(want, w...)
	}
	got, err := splitEnviron(raw)
	if err != nil {
		ts.Fatalf("envcmp: %s: %v", args[0], err)
	}
	kept := got[:0]
	for _, kv := range got {
		if !ignore[envName(kv)] {
			kept = append(kept, kv)
		}
	}
	got = kept
	if problems := diffEnviron(got, want, unordered); len(problems) > 0 {
		ts.Fatalf("envcmp: environment differs:\n%s", strings.Join(problems, "\n"))
	}
	if neg {
		ts.Fatalf("envcmp: environments are equal")
	}
}

// splitEnviron splits /proc/self/environ: every entry ends in a NUL.
func splitEnviron(raw []byte) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if raw[len(raw)-1] != 0 {
		return nil, errors.New("does not end in a NUL byte")
	}
	return strings.Split(string(raw[:len(raw)-1]), "\x00"), nil
}

func envName(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return name
}

// diffEnviron lists every difference between got and want by name and
// length only. Ordered mode compares entry i with entry i (execve's order is
// what the command sees); a repeated name in got is always a problem.
func diffEnviron(got, want []string, unordered bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, kv := range got {
		n := envName(kv)
		if seen[n] {
			out = append(out, fmt.Sprintf("%q appears more than once", n))
		}
		seen[n] = true
	}
	if !unordered {
		for i := 0; i < len(got) || i < len(want); i++ {
			switch {
			case i >= len(got):
				out = append(out, fmt.Sprintf("entry %d: missing %q", i, envName(want[i])))
			case i >= len(want):
				out = append(out, fmt.Sprintf("entry %d: unexpected %q (%d bytes)", i, envName(got[i]), len(got[i])))
			default:
				if p := describeDiff(got[i], want[i]); p != "" {
					out = append(out, fmt.Sprintf("entry %d: %s", i, p))
				}
			}
		}
		return out
	}
	byName := map[string]string{}
	for _, kv := range got {
		byName[envName(kv)] = kv
	}
	for _, w := range want {
		n := envName(w)
		g, ok := byName[n]
		if !ok {
			out = append(out, fmt.Sprintf("missing %q", n))
			continue
		}
		if p := describeDiff(g, w); p != "" {
			out = append(out, p)
		}
		delete(byName, n)
	}
	for n, g := range byName {
		out = append(out, fmt.Sprintf("unexpected %q (%d bytes)", n, len(g)))
	}
	return out
}

// describeDiff says how two NAME=VALUE strings differ without showing
// either value: "KEY: got 12 bytes, want 13 bytes, first difference at byte 5".
func describeDiff(got, want string) string {
	if got == want {
		return ""
	}
	gn, wn := envName(got), envName(want)
	if gn != wn {
		return fmt.Sprintf("got name %q, want %q", gn, wn)
	}
	return gn + ": " + secretdiff.Describe(got[len(gn)+1:], want[len(wn)+1:])
}

// bigvalue KEY N FILE.env [WANT.json] writes a dotenv file holding KEY with a
// value of exactly N bytes (printable, no blanks, nothing dotenv treats
// specially), and optionally the matching expectation for envcmp.
func cmdBigvalue(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: bigvalue KEY N file.env [want.json]")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		ts.Fatalf("bigvalue: bad size %q", args[1])
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_./:+@%"
	v := make([]byte, n)
	for i := range v {
		v[i] = alphabet[(i*7+i/len(alphabet))%len(alphabet)]
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(args[0]+"="+string(v)+"\n"), 0o600))
	if len(args) > 3 {
		b, err := json.Marshal([]string{args[0] + "=" + string(v)})
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[3]), b, 0o600))
	}
}

// novalues FILE WANT.json... fails when FILE contains any value listed in the
// JSON files (values of 4 bytes or more: shorter ones occur by chance). It
// guards stderr and the check report against leaking a secret.
func cmdNovalues(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: novalues file want.json...")
	}
	hay, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	checked := 0
	for _, f := range args[1:] {
		var w []string
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		if err := json.Unmarshal(b, &w); err != nil {
			ts.Fatalf("novalues: %s: %v", f, err)
		}
		for _, kv := range w {
			name, v, _ := strings.Cut(kv, "=")
			if len(v) < 4 {
				continue
			}
			checked++
			if bytes.Contains(hay, []byte(v)) {
				ts.Fatalf("novalues: %s contains the value of %q", args[0], name)
			}
		}
	}
	if checked == 0 {
		ts.Fatalf("novalues: no value long enough to check")
	}
}
