// Command demo shows phase-shim end to end with no Phase account: it starts
// the Phase API emulator (real end-to-end encrypted data) on 127.0.0.1,
// builds phase-shim from this repository (or uses $PHASE_SHIM_BIN), runs
// it against the emulator with a service token, and lets the wrapped
// command print what it received. Then it runs the shell pattern
// phase-shim replaces on the same data, for contrast.
//
//	go run ./examples/demo
//
// Everything printed is demo data from phasetest.DemoFixture.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

// childArg makes this binary act as the wrapped command.
const childArg = "__phase_shim_demo_child__"

// dumpArg makes this binary print its environment as JSON (for the shell
// contrast, which cannot be trusted to print it unambiguously).
const dumpArg = "__phase_shim_demo_dump__"

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		child()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == dumpArg {
		_ = json.NewEncoder(os.Stdout).Encode(os.Environ())
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	fixture := phasetest.DemoFixture()
	emu, err := phasetest.Start("127.0.0.1:0", fixture)
	if err != nil {
		return err
	}
	defer emu.Close()

	tmp, err := os.MkdirTemp("", "phase-shim-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin, err := shimBinary(tmp)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	token := emu.Token("shop", phasetest.ServiceV1)
	heading("1. A Phase API emulator")
	fmt.Printf("   %s serves app \"shop\" (Development, Staging, Production) as Phase does:\n", emu.URL())
	fmt.Println("   every key name and value is an X25519/XChaCha20-Poly1305 ciphertext, decrypted only by the client.")
	// Even a demo token is shown by its type only: tokens are never printed.
	fmt.Println("   A service token (pss_service:v1:…) goes in PHASE_SERVICE_TOKEN, never on the command line.")

	heading("2. phase-shim fetches, decrypts, checks names, and execs the command")
	args := []string{"--host", emu.URL(), "--app", "shop", "--env", "prod", "--", self, childArg}
	fmt.Printf("   $ phase-shim %s\n\n", strings.Join(displayArgs(args), " "))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// A small, known environment, so the command's output shows exactly what
	// phase-shim added (and that the token is gone).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PHASE_SERVICE_TOKEN=" + token, "DEMO_INHERITED=kept"}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("phase-shim: %w", err)
	}

	heading("3. The same secrets through the shell pattern phase-shim replaces")
	contrast(emu, tmp, self)
	return nil
}

func heading(s string) { fmt.Printf("\n== %s\n", s) }

// displayArgs shows the wrapped command by what it does, not by the
// path of this binary in the go build cache.
func displayArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "--" {
			return append(out[:i+1], "print-env")
		}
	}
	return out
}

// shimBinary returns $PHASE_SHIM_BIN or builds phase-shim from the module
// this demo belongs to.
func shimBinary(tmp string) (string, error) {
	if b := os.Getenv("PHASE_SHIM_BIN"); b != "" {
		return b, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(tmp, "phase-shim")
	fmt.Printf("building phase-shim from %s …\n", root)
	build := exec.Command("go", "build", "-o", out, ".")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build: %w (set PHASE_SHIM_BIN to use a prebuilt binary)", err)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull && isShimModule(mod) {
			return filepath.Dir(mod), nil
		}
	}
	// go run keeps the source path of this file: examples/demo/main.go.
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if isShimModule(filepath.Join(root, "go.mod")) {
			return root, nil
		}
	}
	return "", errors.New("cannot find the phase-shim module: run from the repository, or set PHASE_SHIM_BIN")
}

func isShimModule(gomod string) bool {
	b, err := os.ReadFile(gomod)
	return err == nil && bytes.Contains(b, []byte("module github.com/phase-shim/phase-shim\n"))
}

// child is the wrapped command: it prints what it was given.
func child() {
	fmt.Printf("   [command] pid %d, %d variables received\n", os.Getpid(), len(os.Environ()))
	env := map[string]string{}
	var names []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			continue
		}
		env[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := env[k]
		switch {
		case strings.Contains(v, "\n"):
			fmt.Printf("   [command] %-24s %d bytes, %d lines (multi-line PEM, byte for byte)\n", k, len(v), strings.Count(v, "\n"))
		case k == "DB_DSN" && v == env["DATABASE_URL"]:
			fmt.Printf("   [command] %-24s = DATABASE_URL (the ${DATABASE_URL} reference, resolved)\n", k)
		default:
			fmt.Printf("   [command] %-24s %q\n", k, v)
		}
	}
	if _, ok := env["PHASE_SERVICE_TOKEN"]; ok {
		fmt.Println("   [command] PHASE_SERVICE_TOKEN is still set (--keep-token?)")
	} else {
		fmt.Println("   [command] PHASE_SERVICE_TOKEN: removed before exec")
	}
}

// contrast runs `export $(cat secrets | xargs)` on the emulator's data in
// the dotenv form `phase secrets export` writes (KEY="VALUE", unescaped),
// then compares what the command would have received with the real values.
func contrast(emu *phasetest.Server, tmp, self string) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		fmt.Println("   (no sh on this machine: skipped — which is rather the point)")
		return
	}
	if _, err := exec.LookPath("xargs"); err != nil {
		fmt.Println("   (no xargs on this machine: skipped)")
		return
	}
	secrets, err := emu.Secrets("shop", "Production")
	if err != nil {
		fmt.Println("   (could not read the demo data:", err, ")")
		return
	}
	// phase secrets export resolves local references; so does this.
	local := map[string]string{}
	for _, s := range secrets {
		if s.Path == "/" {
			local[s.Key] = s.Value
		}
	}
	var b strings.Builder
	var want []phasetest.PlainSecret
	for _, s := range secrets {
		if s.Path == "/" {
			if v, ok := local[strings.TrimSuffix(strings.TrimPrefix(s.Value, "${"), "}")]; ok {
				s.Value = v
			}
			fmt.Fprintf(&b, "%s=\"%s\"\n", s.Key, s.Value)
			want = append(want, s)
		}
	}
	file := filepath.Join(tmp, "secrets.env")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		fmt.Println("   (could not write the export file:", err, ")")
		return
	}
	fmt.Println("   $ phase secrets export --env prod > secrets.env")
	fmt.Println(`   $ sh -c 'export $(cat secrets.env | xargs) && exec print-env'`)
	fmt.Println()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, "-c", `export $(cat "$1" | xargs) && exec "$2" "$3"`, "sh", file, self, dumpArg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/home/demo"}
	cmd.Dir = tmp
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
		if line != "" {
			fmt.Printf("   [sh] %s\n", line)
		}
	}
	if runErr != nil {
		fmt.Printf("   [sh] %v: the command never starts.\n", runErr)
		return
	}
	var environ []string
	if err := json.Unmarshal(stdout.Bytes(), &environ); err != nil {
		fmt.Println("   (could not read the command's environment)")
		return
	}
	got := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	intact := 0
	for _, s := range want {
		v, ok := got[s.Key]
		state := "intact"
		switch {
		case !ok:
			state = "missing"
		case v != s.Value:
			state = fmt.Sprintf("mangled (%d bytes instead of %d)", len(v), len(s.Value))
		default:
			intact++
		}
		fmt.Printf("   [command] %-24s %s\n", s.Key, state)
	}
	fmt.Printf("   The command started anyway, with %d of %d secrets intact. phase-shim delivered all of them.\n", intact, len(want))
}
