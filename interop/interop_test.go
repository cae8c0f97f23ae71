package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

// childEnv names the file the test binary, run as the wrapped command,
// writes its raw /proc/self/environ to.
const childEnv = "PHASE_SHIM_INTEROP_CHILD"

func TestMain(m *testing.M) {
	if out := os.Getenv(childEnv); out != "" {
		b, err := os.ReadFile("/proc/self/environ")
		if err == nil {
			err = os.WriteFile(out, b, 0o600)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needNode skips without node/npm unless PHASE_SHIM_REQUIRE_INTEROP=1.
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("PHASE_SHIM_REQUIRE_INTEROP") == "1" {
				t.Fatalf("%s not found and PHASE_SHIM_REQUIRE_INTEROP=1", tool)
			}
			t.Skipf("%s not found: the Node SDK interop tests need node and npm", tool)
		}
	}
}

var (
	npmOnce sync.Once
	npmErr  error
)

// installSDK runs `npm ci` in interop/ once per test binary unless the
// pinned SDK is already installed there.
func installSDK(t *testing.T) {
	t.Helper()
	npmOnce.Do(func() {
		if installedVersion() == "3.1.1" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			npmErr = fmt.Errorf("npm ci: %v\n%s", err, out.String())
			return
		}
		if v := installedVersion(); v != "3.1.1" {
			npmErr = fmt.Errorf("npm ci installed @phase.dev/phase-node %q, want 3.1.1", v)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

func installedVersion() string {
	b, err := os.ReadFile(filepath.Join("node_modules", "@phase.dev", "phase-node", "package.json"))
	if err != nil {
		return ""
	}
	var p struct{ Version string }
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Version
}

// node runs one of the scripts under a deadline: the SDK can leave a
// promise unsettled forever on some errors (spec §9).
func node(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "NODE_NO_WARNINGS=1"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// The scripts print only the SDK's error message to stderr.
		t.Fatalf("node %s: %v (deadline: %v)\n%s", strings.Join(args, " "), err, ctx.Err(), stderr.String())
	}
	return stdout.Bytes()
}

func sdkEnv(s *phasetest.Server, app, env, token string) []string {
	return []string{"PHASE_TOKEN=" + token, "PHASE_HOST=" + s.URL(), "PHASE_APP_ID=" + s.AppID(app), "PHASE_ENV_NAME=" + env}
}

// diff compares two KEY → value maps, naming keys and lengths only.
func diff(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: %q missing", what, k)
		case g != want[k]:
			i := 0
			for i < len(g) && i < len(want[k]) && g[i] == want[k][i] {
				i++
			}
			t.Errorf("%s: %q: got %d bytes, want %d bytes, first difference at byte %d", what, k, len(g), len(want[k]), i)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %q", what, k)
		}
	}
}

// TestNodeSDKReadsEmulator: (a) the official SDK decrypts what the
// emulator serves, for every token kind.
func TestNodeSDKReadsEmulator(t *testing.T) {
	needNode(t)
	installSDK(t)
	f := phasetest.DemoFixture()
	s, err := phasetest.Start("127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	root := map[string]string{}
	var backend map[string]string
	for _, e := range f.Apps[0].Envs {
		if e.Name != "Production" {
			continue
		}
		for _, sec := range e.Secrets {
			if sec.Path == "" || sec.Path == "/" {
				root[sec.Key] = sec.Value
			} else {
				backend = map[string]string{sec.Key: sec.Value}
			}
		}
	}
	// The SDK resolves references like every client.
	root["DB_DSN"] = root["DATABASE_URL"]

	for _, kind := range []string{phasetest.ServiceV1, phasetest.ServiceV2, phasetest.User} {
		t.Run(kind, func(t *testing.T) {
			env := sdkEnv(s, "shop", "Production", s.Token("shop", kind))
			var got map[string]string
			if err := json.Unmarshal(node(t, append(env, "PHASE_PATH=/"), "read.js"), &got); err != nil {
				t.Fatalf("read.js output: %v", err)
			}
			diff(t, "Production /", got, root)
			got = nil
			if err := json.Unmarshal(node(t, append(env, "PHASE_PATH=/backend"), "read.js"), &got); err != nil {
				t.Fatalf("read.js output: %v", err)
			}
			diff(t, "Production /backend", got, backend)
		})
	}
	t.Run("personal override", func(t *testing.T) {
		var got map[string]string
		out := node(t, sdkEnv(s, "shop", "Development", s.Token("shop", phasetest.User)), "read.js")
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("read.js output: %v", err)
		}
		diff(t, "Development", got, map[string]string{"STRIPE_KEY": "sk_test_demo_dev",
			"DATABASE_URL": "postgres://localhost:5432/shop_dev", "DEBUG": "false"})
	})
	// The SDK must have been served camelCase, and never asked for leases.
	camel := 0
	for _, r := range s.Log() {
		if r.Endpoint == phasetest.EndpointSecrets && r.Header.Get("X-Use-Camel-Case") == "true" {
			camel++
		}
	}
	if camel == 0 || s.LeasesCreated() != 0 {
		t.Errorf("%d camelCase secrets requests, %d leases", camel, s.LeasesCreated())
	}
}

// hostile is what the SDK writes: names and values that break shells.
// name is what the child must see: the SDK upper-cases, phase-shim's
// default --invalid-keys sanitize renames.
var hostile = []struct{ key, value, name string }{
	{"plain", "simple", "PLAIN"},
	{"secret_key?", "s3cr3t with spaces", "SECRET_KEY_"},
	{"my-key", `"double" and 'single' quotes`, "MY_KEY"},
	{"a.b", "dollar $HOME and ${ not a ref and `backticks` $(id)", "A_B"},
	{"1pass", "glob * ? [a-z] ~ and # hash = equals", "_1PASS"},
	{"multi_line", "-----BEGIN KEY-----\nline 2\r\nline 3\n-----END KEY-----\n", "MULTI_LINE"},
	{"trailing", "  leading and trailing spaces \t ", "TRAILING"},
	{"unicode", "héllo wörld ✓ 🔑 \u00a0nbsp", "UNICODE"},
	{"empty", "", "EMPTY"},
	{"backslashes", `C:\path\n\t\\ not escapes`, "BACKSLASHES"},
	{"json", `{"a": [1, "b"], "c": null}`, "JSON"},
	{"big", strings.Repeat("0123456789abcdef", 4096), "BIG"},
	{"ref", "${PLAIN}/suffix", "REF"},
}

// TestNodeSDKWritesShimReads: (b) the SDK creates secrets through the
// emulator; the real phase-shim binary fetches them and execs a command
// whose environment must hold exactly what the SDK wrote.
func TestNodeSDKWritesShimReads(t *testing.T) {
	needNode(t)
	installSDK(t)
	f := phasetest.Fixture{Apps: []phasetest.App{{Name: "interop", Envs: []phasetest.Env{
		{Name: "Development"}, {Name: "Production"},
	}}}}
	s, err := phasetest.Start("127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmp := t.TempDir()

	var input []map[string]any
	for _, h := range hostile {
		input = append(input, map[string]any{"key": h.key, "value": h.value, "comment": "written by node"})
	}
	b, _ := json.Marshal(input)
	file := filepath.Join(tmp, "secrets.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	node(t, sdkEnv(s, "interop", "Production", s.Token("interop", phasetest.ServiceV2)), "write.js", file)

	// What the SDK wrote, as the emulator decrypts it.
	stored, err := s.Values("interop", "Production", "/")
	if err != nil {
		t.Fatal(err)
	}
	wrote := map[string]string{}
	for _, h := range hostile {
		wrote[strings.ToUpper(h.key)] = h.value
	}
	diff(t, "stored by the SDK", stored, wrote)

	bin := shimBinary(t, tmp)
	for _, kind := range []string{phasetest.ServiceV1, phasetest.ServiceV2, phasetest.User} {
		t.Run(kind, func(t *testing.T) {
			runShim(t, bin, s, s.Token("interop", kind), filepath.Join(tmp, "environ-"+kind))
		})
	}
}

// runShim runs phase-shim with this test binary as the command and checks
// the command's raw environment against what the SDK wrote.
func runShim(t *testing.T, bin string, s *phasetest.Server, token, dump string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--host", s.URL(), "--app", "interop", "--env", "prod", "--", os.Args[0])
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PHASE_SERVICE_TOKEN=" + token, childEnv + "=" + dump}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	runErr := cmd.Run()
	// phase-shim's output must never carry a value; check before showing it.
	for _, h := range hostile {
		if len(h.value) >= 6 && strings.Contains(stderr.String(), h.value) {
			t.Fatalf("phase-shim output contains the value of %q", h.key)
		}
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatalf("phase-shim output contains the token")
	}
	if runErr != nil {
		t.Fatalf("phase-shim: %v\n%s", runErr, stderr.String())
	}
	raw, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the command did not run: %v\n%s", err, stderr.String())
	}
	got := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("%q appears twice in the command's environment", k)
		}
		got[k] = v
	}
	want := map[string]string{"PATH": os.Getenv("PATH"), childEnv: dump}
	for _, h := range hostile {
		want[h.name] = h.value
	}
	want["REF"] = "simple/suffix"
	diff(t, "command environment", got, want)
}

// shimBinary is $PHASE_SHIM_BIN, or phase-shim built from this module.
func shimBinary(t *testing.T, dir string) string {
	t.Helper()
	if b := os.Getenv("PHASE_SHIM_BIN"); b != "" {
		return b
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "phase-shim")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	return bin
}

// TestNodeSDKUpdatesAndDeletes: the SDK's PUT and DELETE go through the
// emulator as the console would take them (spec §13.2: the SDK's update
// re-sends an empty comment and no tags, wiping both).
func TestNodeSDKUpdatesAndDeletes(t *testing.T) {
	needNode(t)
	installSDK(t)
	f := phasetest.Fixture{Apps: []phasetest.App{{Name: "edit", Envs: []phasetest.Env{{Name: "Production", Secrets: []phasetest.Secret{
		{Key: "A", Value: "old a", Comment: "about a", Tags: []string{"t"}},
		{Key: "B", Value: "b stays"},
		{Key: "C", Value: "c goes"},
	}}}}}}
	s, err := phasetest.Start("127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file := filepath.Join(t.TempDir(), "changes.json")
	changes := `{"update": {"A": "new 'a' = \"value\"\n"}, "delete": ["C"]}`
	if err := os.WriteFile(file, []byte(changes), 0o600); err != nil {
		t.Fatal(err)
	}
	env := sdkEnv(s, "edit", "Production", s.Token("edit", phasetest.ServiceV2))
	node(t, env, "update.js", file)

	stored, err := s.Secrets("edit", "Production")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range stored {
		got[p.Key] = p.Value
		if p.Key == "A" && (p.Version != 2 || p.Comment != "" || len(p.Tags) != 0) {
			t.Errorf("A after the SDK's update: version %d, comment %d bytes, %d tags", p.Version, len(p.Comment), len(p.Tags))
		}
	}
	want := map[string]string{"A": "new 'a' = \"value\"\n", "B": "b stays"}
	diff(t, "stored after update and delete", got, want)
	got = nil
	if err := json.Unmarshal(node(t, env, "read.js"), &got); err != nil {
		t.Fatalf("read.js output: %v", err)
	}
	diff(t, "read back by the SDK", got, want)
	if c := s.Requests(); c.SecretsPut != 1 || c.SecretsDelete != 1 {
		t.Errorf("%d PUT and %d DELETE requests, want 1 and 1", c.SecretsPut, c.SecretsDelete)
	}
}
