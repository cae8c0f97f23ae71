package fetch

// The fault-injection suite: the real phase-shim binary against the
// emulator, one row per fault. Each row either starts the command (which
// creates a marker file) within the deadline, or exits with the documented
// code and the marker does not exist. No row may print a secret value or
// the token, even at debug verbosity.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

var (
	shimOnce sync.Once
	shimPath string
	shimErr  error
	shimDir  string
)

// shimBinary builds phase-shim once per test process, the way it is
// released (static, trimmed).
func shimBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the fault suite builds and runs the phase-shim binary")
	}
	shimOnce.Do(func() {
		shimDir, shimErr = os.MkdirTemp("", "phase-shim-faults-")
		if shimErr != nil {
			return
		}
		shimPath = filepath.Join(shimDir, "phase-shim")
		cmd := exec.Command("go", "build", "-trimpath", "-o", shimPath, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if shimErr != nil {
		t.Fatal(shimErr)
	}
	return shimPath
}

// shimRun is one phase-shim invocation and what it left behind.
type shimRun struct {
	code     int
	stdout   string
	stderr   string
	started  bool // the marker exists: the command ran
	duration time.Duration
}

type shimCall struct {
	host    string
	token   string
	args    []string // before "--"
	env     []string // extra variables
	timeout string   // --timeout
	// dnsNamespace runs the binary in its own mount namespace whose
	// resolv.conf points at a loopback address where nothing answers.
	dnsNamespace bool
}

// run starts phase-shim with a clean environment and `touch MARKER` as the
// command.
func (c shimCall) run(t *testing.T) shimRun {
	t.Helper()
	bin := shimBinary(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	timeout := c.timeout
	if timeout == "" {
		timeout = "5s"
	}
	args := append([]string{"-v", "--timeout", timeout}, c.args...)
	args = append(args, "--", "/usr/bin/touch", marker)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "PHASE_HOST=" + c.host,
		// Retries as in production, only with a shorter base so the rows
		// that recover do so in well under a second.
		"PHASE_SHIM_TEST_RETRY_BASE=20ms"}
	if c.token != "" {
		env = append(env, "PHASE_SERVICE_TOKEN="+c.token)
	}
	env = append(env, c.env...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if c.dnsNamespace {
		// The test binary re-runs itself as a launcher that bind-mounts
		// the resolv.conf and then execs phase-shim.
		cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFaultsNamespaceLauncher$")
		env = append(env, "PHASE_SHIM_FAULTS_LAUNCH="+strings.Join(append([]string{bin}, args...), "\x1f"))
		cmd.SysProcAttr = &unix.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Env = env
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := shimRun{stdout: stdout.String(), stderr: stderr.String(), duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running phase-shim: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		r.started = true
	}
	return r
}

// TestFaultsNamespaceLauncher is not a test: run by shimCall with
// PHASE_SHIM_FAULTS_LAUNCH set, in a fresh mount namespace, it replaces
// /etc/resolv.conf for itself only and execs phase-shim.
func TestFaultsNamespaceLauncher(t *testing.T) {
	spec := os.Getenv("PHASE_SHIM_FAULTS_LAUNCH")
	if spec == "" {
		t.Skip("helper process for the DNS row")
	}
	argv := strings.Split(spec, "\x1f")
	conf := filepath.Join(os.TempDir(), fmt.Sprintf("phase-shim-resolv-%d.conf", os.Getpid()))
	// 127.0.0.1:53 has no listener here: the query stays on loopback and
	// is refused. attempts/timeout keep a silent drop short, too.
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(99)
	}
	if err := unix.Mount(conf, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		fmt.Fprintln(os.Stderr, "launcher: bind resolv.conf:", err)
		os.Exit(99)
	}
	os.Remove(conf) // the bind mount keeps the inode
	env := os.Environ()
	kept := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PHASE_SHIM_FAULTS_LAUNCH=") {
			kept = append(kept, kv)
		}
	}
	err := unix.Exec(argv[0], argv, kept)
	fmt.Fprintln(os.Stderr, "launcher: exec:", err)
	os.Exit(99)
}

// faultServer is an emulator with the demo fixture, optionally behind TLS.
type faultServer struct {
	*phasetest.Server
	host    string
	token   string
	secrets []namedValue // every plaintext value worth looking for in the output, by key
	caFile  string       // with TLS: the PEM of the test server's certificate
}

func newFaultServer(t *testing.T) *faultServer {
	t.Helper()
	s := phasetest.New(phasetest.DemoFixture())
	t.Cleanup(s.Close)
	fs := &faultServer{Server: s, host: s.URL(), token: s.Token("shop", "service_v2")}
	vals, err := s.Values("shop", "Production", "")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vals {
		if len(strings.TrimSpace(v)) >= 6 {
			fs.secrets = append(fs.secrets, namedValue{k, v})
		}
	}
	slices.SortFunc(fs.secrets, func(a, b namedValue) int { return strings.Compare(a.key, b.key) })
	return fs
}

type namedValue struct{ key, value string }

// leaks names what of the fixture's secrets and the token text shows,
// without the values: key names, "the token", the length of a token part.
func (fs *faultServer) leaks(text, token string) []string {
	var out []string
	for _, s := range fs.secrets {
		if strings.Contains(text, s.value) {
			out = append(out, fmt.Sprintf("the value of %s (%d bytes)", s.key, len(s.value)))
		}
	}
	if token != "" {
		if strings.Contains(text, token) {
			out = append(out, "the token")
		}
		// The long hex parts of the token, alone, must not leak either.
		for i, part := range strings.Split(token, ":") {
			if len(part) >= 32 && strings.Contains(text, part) {
				out = append(out, fmt.Sprintf("part %d of the token (%d characters)", i, len(part)))
			}
		}
	}
	return out
}

// shown is text for a failure message or a log line: itself when it holds
// no secret, else only a note of what it held.
func (fs *faultServer) shown(text, token string) string {
	if l := fs.leaks(text, token); len(l) > 0 {
		return "(withheld: it contains " + strings.Join(l, ", ") + ")"
	}
	return text
}

// withTLS serves the emulator over TLS with httptest's own CA, which no
// system trust store knows.
func (fs *faultServer) withTLS(t *testing.T) {
	t.Helper()
	ts := httptest.NewUnstartedServer(fs.Server)
	// The rejected handshakes are the point of the row, not news.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	fs.host = ts.URL
	cert := ts.Certificate()
	fs.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(fs.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// Sanity: the certificate really is unknown to this machine's roots.
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1"}); err == nil {
		t.Fatal("httptest's certificate verifies against the system roots")
	}
}

// closedPort is a loopback address with no listener.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

type faultRow struct {
	name  string
	setup func(t *testing.T, fs *faultServer, c *shimCall)
	code  int // 0: the command starts
	// note is a piece of stderr that explains the failure to the operator.
	note string
}

var faultRows = []faultRow{
	{name: "healthy", code: 0},
	{name: "refused connection", code: 69, note: "refused", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		c.host = closedPort(t)
		c.timeout = "2s"
	}},
	{name: "DNS failure", code: 69, note: "DNS", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		if os.Geteuid() != 0 {
			if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
				t.Fatal("the DNS row needs root (a mount namespace for resolv.conf)")
			}
			t.Skip("the DNS row needs root: without its own resolv.conf the lookup could leave the machine")
		}
		c.host = "http://phase-shim-fault.invalid"
		c.timeout = "2s"
		c.dnsNamespace = true
	}},
	{name: "slow headers once", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultSlowHeaders, Count: 1, Delay: 500 * time.Millisecond})
	}},
	{name: "slow headers past the deadline", code: 69, note: "deadline", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultSlowHeaders, Delay: 30 * time.Second})
		c.timeout = "1s"
	}},
	{name: "slow body once", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultSlowBody, Endpoint: phasetest.EndpointSecrets, Count: 1, Delay: 500 * time.Millisecond})
	}},
	{name: "slow body past the deadline", code: 69, note: "deadline", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultSlowBody, Endpoint: phasetest.EndpointSecrets, Delay: 30 * time.Second})
		c.timeout = "1s"
	}},
	{name: "reset mid-body once", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultReset, Endpoint: phasetest.EndpointSecrets, Count: 1})
	}},
	{name: "reset mid-body always", code: 69, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultReset, Endpoint: phasetest.EndpointSecrets})
		c.timeout = "2s"
	}},
	{name: "truncated JSON", code: 76, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultTruncate, Endpoint: phasetest.EndpointSecrets})
	}},
	{name: "wrong content type", code: 76, note: "content type", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultWrongContentType, Endpoint: phasetest.EndpointTokens})
	}},
	{name: "garbage JSON", code: 76, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultGarbageJSON, Endpoint: phasetest.EndpointSecrets})
	}},
	{name: "wrong JSON shape", code: 76, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.Inject(phasetest.Fault{Kind: phasetest.FaultWrongShape, Endpoint: phasetest.EndpointTokens})
	}},
	{name: "500 twice", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.FailFirst(2, 500) }},
	{name: "502 twice", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.FailFirst(2, 502) }},
	{name: "503 twice", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.FailFirst(2, 503) }},
	{name: "503 always", code: 69, note: "503", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.FailFirst(1<<30, 503)
		c.timeout = "2s"
	}},
	{name: "429 with Retry-After 1", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.TooManyRequests(1, "1") }},
	{name: "429 with an HTTP-date Retry-After", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.TooManyRequests(1, time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
	}},
	{name: "429 without Retry-After", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.TooManyRequests(3, "") }},
	{name: "429 with Retry-After past the deadline", code: 69, note: "retry after", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.TooManyRequests(1<<30, "120")
		c.timeout = "3s"
	}},
	{name: "401", code: 77, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.FailFirst(1, 401) }},
	{name: "403", code: 77, setup: func(t *testing.T, fs *faultServer, c *shimCall) { fs.FailFirst(1, 403) }},
	{name: "expired token", code: 77, note: "expired", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		tok, err := fs.MintToken("shop", "service_v2", 0)
		if err != nil {
			t.Fatal(err)
		}
		fs.ExpireToken(tok)
		c.token = tok
	}},
	{name: "malformed token", code: 77, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		c.token = fs.token[:len(fs.token)-10]
	}},
	{name: "tampered ciphertext", code: 76, note: "tampering", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		if err := fs.TamperSecret("shop", "Production", "DATABASE_URL"); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "wrong environment", code: 78, note: "Production", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		c.args = []string{"--app", "shop", "--env", "Prod-EU"}
	}},
	{name: "unknown app", code: 78, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		c.args = []string{"--app", "warehouse", "--env", "Production"}
	}},
	{name: "TLS with an unknown CA", code: 69, note: "unknown authority", setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.withTLS(t)
		c.host = fs.host
	}},
	{name: "TLS with the CA given", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.withTLS(t)
		c.host = fs.host
		c.args = append(c.args, "--ca-file", fs.caFile)
	}},
	{name: "TLS with SSL_CERT_FILE", code: 0, setup: func(t *testing.T, fs *faultServer, c *shimCall) {
		fs.withTLS(t)
		c.host = fs.host
		c.env = append(c.env, "SSL_CERT_FILE="+fs.caFile)
	}},
}

func TestFaults(t *testing.T) {
	shimBinary(t)
	for _, row := range faultRows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			fs := newFaultServer(t)
			c := shimCall{host: fs.host, token: fs.token, args: []string{"--app", "shop", "--env", "Production"}}
			if row.setup != nil {
				row.setup(t, fs, &c)
			}
			r := c.run(t)
			// The leak check comes first; stderr is only ever shown
			// through fs.shown, which withholds it if it holds a secret.
			checkRun(t, r, row.code, fs, c.token)
			if testing.Verbose() {
				t.Logf("exit %d after %s; stderr:\n%s", r.code, r.duration.Round(time.Millisecond), fs.shown(r.stderr, c.token))
			}
			if row.note != "" && !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(row.note)) {
				t.Errorf("stderr does not mention %q:\n%s", row.note, fs.shown(r.stderr, c.token))
			}
		})
	}
}

// checkRun asserts the exit code, that the command ran exactly when the
// code is 0, and that no value or token was printed.
func checkRun(t *testing.T, r shimRun, wantCode int, fs *faultServer, token string) {
	t.Helper()
	checkRunStart(t, r, wantCode, wantCode == 0, fs, token)
}

func checkRunStart(t errorReporter, r shimRun, wantCode int, wantStart bool, fs *faultServer, token string) {
	t.Helper()
	// Leaks first, by name only: the messages below must never quote
	// output that holds a secret.
	for _, l := range fs.leaks(r.stdout+r.stderr, token) {
		t.Errorf("output contains %s", l)
	}
	if r.code != wantCode {
		t.Errorf("exit code %d, want %d (after %s); stderr:\n%s", r.code, wantCode, r.duration.Round(time.Millisecond), fs.shown(r.stderr, token))
	}
	if r.started != wantStart {
		t.Errorf("command started: %v, want %v", r.started, wantStart)
	}
}

// TestFaultsCache covers the cache rows: an outage with a fresh cache
// starts (within --cache-fallback-after, not the whole --timeout), with a
// stale one exits 69, and a rejected token with a cache present exits 77
// and removes it.
func TestFaultsCache(t *testing.T) {
	bin := shimBinary(t)
	if out, _ := exec.Command(bin, "--help").CombinedOutput(); !strings.Contains(string(out), "--cache-dir") {
		t.Skip("this phase-shim has no --cache-dir yet")
	}
	setup := func(t *testing.T) (*faultServer, shimCall, Cache, string) {
		fs := newFaultServer(t)
		tok, err := fs.MintToken("shop", "service_v2", 0)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "cache")
		c := shimCall{host: fs.host, token: tok, timeout: "2s",
			args: []string{"--app", "shop", "--env", "Production", "--cache-dir", dir}}
		// What the CLI will ask the cache for; the test writes entries
		// for it directly when it needs an old one.
		cc := CacheContextOf(PhaseOptions{Host: fs.host, App: "shop", Env: "Production", Path: "/", References: RefStrict})
		return fs, c, Cache{Dir: dir}, fileIDPath(dir, tok, cc)
	}

	t.Run("outage with a fresh cache starts", func(t *testing.T) {
		t.Parallel()
		fs, c, _, file := setup(t)
		checkRun(t, c.run(t), 0, fs, c.token)
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("no cache file where the library would look: %v", err)
		}
		fs.FailFirst(1<<30, 503)
		r := c.run(t)
		checkRun(t, r, 0, fs, c.token)
		if !strings.Contains(r.stderr, "cached secrets") {
			t.Errorf("stderr does not say the cache was used:\n%s", fs.shown(r.stderr, c.token))
		}
		// check says so too, and starts nothing.
		c.args = append([]string{"check", "-o", "json"}, c.args...)
		r = c.run(t)
		checkRunStart(t, r, 0, false, fs, c.token)
		if !strings.Contains(r.stdout, `"cache":{"used":true`) && !strings.Contains(r.stdout, `"used": true`) {
			t.Errorf("check -o json does not report the cache use:\n%s", fs.shown(r.stdout, c.token))
		}
	})
	t.Run("outage with a stale cache exits 69", func(t *testing.T) {
		t.Parallel()
		fs, c, cache, file := setup(t)
		// A cache saved 25 hours ago (default --cache-max-age 24h).
		old := sampleFromServer(t, fs)
		cache.now = func() time.Time { return time.Now().Add(-25 * time.Hour) }
		cc := CacheContextOf(PhaseOptions{Host: fs.host, App: "shop", Env: "Production", Path: "/", References: RefStrict})
		if err := cache.Save(c.token, cc, old); err != nil {
			t.Fatal(err)
		}
		fs.FailFirst(1<<30, 503)
		r := c.run(t)
		checkRun(t, r, 69, fs, c.token)
		if !strings.Contains(r.stderr, "too old") || !strings.Contains(r.stderr, "25h0m") {
			t.Errorf("stderr does not give the stale cache's age:\n%s", fs.shown(r.stderr, c.token))
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("a stale cache was removed by an outage: %v", err)
		}
	})
	// --cache-fallback-after: with a fresh cache an outage costs seconds,
	// not the whole --timeout. The --timeout is 2 minutes and run kills
	// phase-shim after 60 s, so a start that waits for the deadline fails
	// the row (exit -1) instead of passing slowly; nothing else is timed.
	t.Run("refused connection with a fresh cache starts from it before --timeout", func(t *testing.T) {
		t.Parallel()
		fs, c, cache, _ := setup(t)
		c.host, c.timeout = closedPort(t), "2m"
		cc := CacheContextOf(PhaseOptions{Host: c.host, App: "shop", Env: "Production", Path: "/", References: RefStrict})
		if err := cache.Save(c.token, cc, sampleFromServer(t, fs)); err != nil {
			t.Fatal(err)
		}
		r := c.run(t) // the default --cache-fallback-after, 5s
		checkRun(t, r, 0, fs, c.token)
		if !strings.Contains(r.stderr, "no live answer within 5s") {
			t.Errorf("stderr does not say the cache replaced a live answer after 5s:\n%s", fs.shown(r.stderr, c.token))
		}
	})
	t.Run("server that never answers with a fresh cache starts from it before --timeout", func(t *testing.T) {
		t.Parallel()
		fs, c, _, _ := setup(t)
		checkRun(t, c.run(t), 0, fs, c.token)
		fs.SetLatency(time.Hour, 0)
		c.timeout = "2m"
		c.env = append(c.env, "PHASE_SHIM_CACHE_FALLBACK_AFTER=1s")
		r := c.run(t)
		checkRun(t, r, 0, fs, c.token)
		if !strings.Contains(r.stderr, "no live answer within 1s") {
			t.Errorf("stderr does not say the cache replaced a live answer after 1s:\n%s", fs.shown(r.stderr, c.token))
		}
	})
	// A server that answers after 2 s, with --cache-fallback-after 500ms:
	// with a fresh cache the start uses it, without one it waits for the
	// live answer (the whole --timeout is still there).
	t.Run("slow server with a fresh cache: cached; without: live", func(t *testing.T) {
		t.Parallel()
		fs, c, _, file := setup(t)
		c.timeout = "30s"
		c.args = append(c.args, "--cache-fallback-after", "500ms")
		fs.SetLatency(2*time.Second, 0)
		r := c.run(t) // no cache yet
		checkRun(t, r, 0, fs, c.token)
		if strings.Contains(r.stderr, "cached secrets") {
			t.Errorf("a start without a cache used one:\n%s", fs.shown(r.stderr, c.token))
		}
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("the live start wrote no cache: %v", err)
		}
		r = c.run(t)
		checkRun(t, r, 0, fs, c.token)
		if !strings.Contains(r.stderr, "no live answer within 500ms") {
			t.Errorf("a slow server with a fresh cache did not fall back:\n%s", fs.shown(r.stderr, c.token))
		}
	})
	t.Run("negative --cache-fallback-after is a usage error", func(t *testing.T) {
		t.Parallel()
		fs, c, _, _ := setup(t)
		c.args = append(c.args, "--cache-fallback-after", "-1s")
		checkRun(t, c.run(t), 64, fs, c.token)
	})
	t.Run("rejected token with a cache exits 77 and removes it", func(t *testing.T) {
		t.Parallel()
		fs, c, _, file := setup(t)
		checkRun(t, c.run(t), 0, fs, c.token)
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("no cache file: %v", err)
		}
		fs.FailFirst(1, 401)
		checkRun(t, c.run(t), 77, fs, c.token)
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the cache survived a 401: %v", err)
		}
	})
	t.Run("expired token with a cache exits 77 and removes it", func(t *testing.T) {
		t.Parallel()
		fs, c, _, file := setup(t)
		checkRun(t, c.run(t), 0, fs, c.token)
		fs.ExpireToken(c.token)
		checkRun(t, c.run(t), 77, fs, c.token)
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the cache survived an expired token: %v", err)
		}
	})
}

func fileIDPath(dir, token string, cc CacheContext) string {
	return Cache{Dir: dir}.path(fileID(token, cc))
}

// sampleFromServer is the emulator's own Production answer, as a result.
func sampleFromServer(t *testing.T, fs *faultServer) *PhaseResult {
	t.Helper()
	res, err := FetchPhase(context.Background(), PhaseOptions{Token: fs.token, Host: fs.host, App: "shop", Env: "Production"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// errorReporter is the part of *testing.T that checkRunStart uses, so a
// test can see its messages.
type errorReporter interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
}

type recordedErrors struct{ msgs []string }

func (r *recordedErrors) Helper()           {}
func (r *recordedErrors) Error(args ...any) { r.msgs = append(r.msgs, fmt.Sprint(args...)) }
func (r *recordedErrors) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// TestCheckRunNeverEchoesSecrets: when a run leaks, the failure names the
// key that leaked and never prints the output that holds it.
func TestCheckRunNeverEchoesSecrets(t *testing.T) {
	fs := newFaultServer(t)
	vals, err := fs.Values("shop", "Production", "")
	if err != nil {
		t.Fatal(err)
	}
	const key = "DATABASE_URL"
	leaked := vals[key]
	if len(leaked) < 6 {
		t.Fatalf("fixture: %s is too short to look for", key)
	}
	parts := strings.Split(fs.token, ":")
	for _, r := range []shimRun{
		{code: 1, stderr: "phase-shim: oops " + leaked + "\n"},
		{code: 1, stdout: leaked, stderr: "phase-shim: token " + fs.token + "\n"},
		{code: 0, started: true, stderr: "phase-shim: " + parts[len(parts)-1] + "\n"},
	} {
		var rec recordedErrors
		checkRunStart(&rec, r, 77, false, fs, fs.token)
		if len(rec.msgs) == 0 {
			t.Fatal("a leaking run with the wrong exit code passed")
		}
		named := false
		for i, m := range rec.msgs {
			if strings.Contains(m, leaked) {
				t.Errorf("message %d repeats the value of %s (%d bytes)", i, key, len(leaked))
			}
			for _, p := range parts {
				if len(p) >= 32 && strings.Contains(m, p) {
					t.Errorf("message %d repeats a %d-character part of the token", i, len(p))
				}
			}
			named = named || strings.Contains(m, key) || strings.Contains(m, "token")
		}
		if !named {
			t.Errorf("none of the %d messages names what leaked", len(rec.msgs))
		}
	}
}
