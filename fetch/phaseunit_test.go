package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseReference(t *testing.T) {
	cases := []struct {
		body string
		want reference
		err  string
	}{
		{"KEY", reference{"", "", "/", "KEY"}, ""},
		{"staging.DEBUG", reference{"", "staging", "/", "DEBUG"}, ""},
		{"prod./frontend/SECRET_KEY", reference{"", "prod", "/frontend", "SECRET_KEY"}, ""},
		{"/backend/payments/STRIPE_KEY", reference{"", "", "/backend/payments", "STRIPE_KEY"}, ""},
		{"backend/payments/STRIPE_KEY", reference{"", "", "/backend/payments", "STRIPE_KEY"}, ""},
		{"backend_api::production.SECRET_KEY", reference{"backend_api", "production", "/", "SECRET_KEY"}, ""},
		{"backend_api::production./frontend/KEY", reference{"backend_api", "production", "/frontend", "KEY"}, ""},
		{"current./backend//KEY", reference{"", "current", "/backend", "KEY"}, ""},
		{"a.b.c", reference{"", "a", "/", "b.c"}, ""}, // first "." splits, as in Phase
		{"backend_api::SECRET_KEY", reference{}, "cross-app references must specify an environment"},
		{"app::.KEY", reference{}, "cross-app references must specify an environment"},
		{"::dev.KEY", reference{}, "empty application name"},
		{"/backend/", reference{}, "no key name"},
		{"dev.", reference{}, "no key name"},
	}
	for _, c := range cases {
		got, err := parseReference(c.body)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %v, want error %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.body, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(reference{})); diff != "" {
			t.Errorf("%q (-want +got):\n%s", c.body, diff)
		}
	}
}

func TestMatchName(t *testing.T) {
	names := []string{"Development", "Staging", "Production", "Prod-EU", "shop", "Shop", "shop-admin"}
	cases := []struct {
		want  string
		idx   int
		cands []string
	}{
		{"development", 0, nil},
		{"dev", 0, nil},
		{"STAGING", 1, nil},
		{"production", 2, nil},
		{"prod", -1, []string{"Production", "Prod-EU"}},
		{"eu", 3, nil},
		{"shop", 4, nil}, // case-sensitive exact breaks the tie
		{"SHOP", -1, []string{"shop", "Shop"}},
		{"admin", 6, nil},
		{"qa", -1, nil},
		{"", -1, nil},
	}
	for _, c := range cases {
		idx, cands := matchName(names, c.want)
		if idx != c.idx || !cmp.Equal(cands, c.cands) {
			t.Errorf("%q: got %d %q, want %d %q", c.want, idx, cands, c.idx, c.cands)
		}
	}
}

func TestSelectErrorsListChoices(t *testing.T) {
	app := &apiApp{ID: "a1", Name: "shop", Envs: []apiEnv{{ID: "e1", Name: "Production"}, {ID: "e2", Name: "Prod-EU"}, {ID: "e3", Name: "Development"}}}
	_, err := selectEnv(app, "prod")
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `ambiguous`) || !strings.Contains(err.Error(), `"Production", "Prod-EU"`) {
		t.Errorf("ambiguous env: %v", err)
	}
	_, err = selectEnv(app, "qa")
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"Production", "Prod-EU", "Development"`) {
		t.Errorf("unknown env: %v", err)
	}
	apps := []apiApp{*app, {ID: "a2", Name: "shop-admin"}}
	if _, err := selectApp(apps, "", ""); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "shop-admin (a2)") {
		t.Errorf("no app given: %v", err)
	}
	if a, err := selectApp(apps, "", "SHOP"); err != nil || a.ID != "a1" {
		t.Errorf("exact name: %v", err)
	}
	if _, err := selectApp(append(apps, apiApp{ID: "a3", Name: "shop-web"}), "", "shop-"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous app: %v", err)
	}
	if a, err := selectApp(apps, "a2", "shop"); err != nil || a.ID != "a2" {
		t.Errorf("id wins over name: %v", err)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "//": "/", "backend": "/backend", "/backend/": "/backend",
		"//backend//payments/": "/backend/payments", "a/b": "/a/b",
	} {
		if got := normalizePath(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestTagFilter(t *testing.T) {
	f := newTagFilter([]string{"Backend_API", " ", "db"})
	cases := []struct {
		tags []string
		keep bool
	}{
		{[]string{"backend api"}, true},
		{[]string{"BACKEND_API"}, true},
		{[]string{"x", "DB"}, true},
		{[]string{"backend"}, false},
		{[]string{"database"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := f.keep(c.tags); got != c.keep {
			t.Errorf("%q: got %v", c.tags, got)
		}
	}
	if newTagFilter([]string{"", " "}) != nil || !newTagFilter(nil).keep(nil) {
		t.Error("an empty tag list must not filter")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                                0,
		"0":                               0,
		"-5":                              0,
		"7":                               7 * time.Second,
		" 12 ":                            12 * time.Second,
		"99999999999999999999":            0, // not an int64: ignored
		"86400":                           time.Hour,
		"Tue, 01 Dec 2026 12:00:30 GMT":   30 * time.Second,
		"Tue, 01 Dec 2026 11:00:00 GMT":   0,
		"Tuesday, 01-Dec-26 12:01:00 GMT": time.Minute,
		"soon":                            0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	c := &apiClient{retryBase: 100 * time.Millisecond, retryMax: time.Second}
	for attempt := 1; attempt < 70; attempt++ {
		ceil := min(time.Second, 100*time.Millisecond<<min(attempt-1, 20))
		for range 20 {
			d := c.backoff(attempt, 0)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %s outside [0, %s]", attempt, d, ceil)
			}
			if d2 := c.backoff(attempt, 3*time.Second); d2 < 3*time.Second || d2 > 3*time.Second+ceil {
				t.Fatalf("attempt %d: Retry-After floor broken: %s", attempt, d2)
			}
		}
	}
}

func TestAPIBase(t *testing.T) {
	cases := map[string]string{
		"":                           DefaultPhaseHost,
		"https://console.phase.dev":  "https://console.phase.dev",
		"https://console.phase.dev/": "https://console.phase.dev",
		"https://x.example/phase/":   "https://x.example/phase",
		"https://x.example//":        "https://x.example/",
		"http://127.0.0.1:8080":      "http://127.0.0.1:8080",
		"console.phase.dev":          "",
		"https://":                   "",
		"https://x?a=b":              "",
		"ftp://x":                    "",
		"pss_service:v2:" + strings.Repeat("ab", 32) + ":" + strings.Repeat("cd", 32): "",
	}
	for in, want := range cases {
		got, err := apiBase(in)
		if want == "" {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("case of %d bytes: got %q, %v; want ErrConfig", len(in), got, err)
			}
			if err != nil && strings.Contains(err.Error(), "abab") {
				t.Errorf("case of %d bytes: the error echoes token material", len(in))
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestServerMessageAndCleanText(t *testing.T) {
	cases := map[string]string{
		`{"error": "Token expired or deleted"}`:   "Token expired or deleted",
		`{"detail": "Not found."}`:                "Not found.",
		`{"error": {"nested": 1}, "detail": "d"}`: "d",
		`{"error": "a\nb\u0000c"}`:                "a b c",
		`<html>secret page</html>`:                "",
		`{"error": ""}`:                           "",
	}
	for in, want := range cases {
		if got := serverMessage([]byte(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if got := cleanText(strings.Repeat("é", 300), 200); len([]rune(got)) != 201 {
		t.Errorf("cleanText did not cut at 200 runes: %d", len([]rune(got)))
	}
}

func TestFindPhaseConfig(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := FindPhaseConfig(deep); c != nil || err != nil {
		t.Fatalf("nothing there: %v %v", c, err)
	}
	if c, err := FindPhaseConfig(""); c != nil || err != nil {
		t.Fatalf("empty dir: %v %v", c, err)
	}
	os.WriteFile(filepath.Join(root, "a", ".phase.json"), []byte(`{"appId":"x","monorepoSupport":true}`), 0o644)
	// root/a is 9 levels above deep: beyond the search depth of 8.
	if c, err := FindPhaseConfig(deep); c != nil || err != nil {
		t.Fatalf("found beyond the depth limit: %v %v", c, err)
	}
	c, err := FindPhaseConfig(filepath.Join(root, "a", "b", "c", "d", "e", "f", "g", "h", "i"))
	if err != nil || c == nil || c.AppID != "x" {
		t.Fatalf("8 levels up: %v %v", c, err)
	}
	os.WriteFile(filepath.Join(deep, ".phase.json"), []byte(`{"appId":"here","defaultEnv":"prod"}`), 0o644)
	c, err = FindPhaseConfig(deep)
	if err != nil || c.AppID != "here" || c.DefaultEnv != "prod" || c.MonorepoSupport {
		t.Fatalf("own dir: %+v %v", c, err)
	}
	os.WriteFile(filepath.Join(deep, ".phase.json"), []byte(`{"appId":"here"} trailing`), 0o644)
	if _, err = FindPhaseConfig(deep); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), deep) {
		t.Fatalf("bad file: %v", err)
	}
}

// TestFindPhaseConfigBrokenParent: a parent's .phase.json counts only when
// it shows "monorepoSupport": true; one that cannot be read or parsed shows
// nothing, so it is passed over like any other that does not opt in, and
// the search goes on. Only the work dir's own file is held to parse.
func TestFindPhaseConfigBrokenParent(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "mono", "svc", "api")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(dir, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, PhaseConfigFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc := filepath.Join(root, "mono", "svc")
	write(svc, `{"appId": "half-written", `)
	if c, err := FindPhaseConfig(work); c != nil || err != nil {
		t.Fatalf("only a malformed parent: got %+v, %v; want none", c, err)
	}
	write(filepath.Join(root, "mono"), `{"appId": "mono", "monorepoSupport": true}`)
	if c, err := FindPhaseConfig(work); err != nil || c == nil || c.AppID != "mono" {
		t.Fatalf("malformed parent below an opted-in one: got %+v, %v; want appId mono", c, err)
	}
	// A parent .phase.json that is not a file at all.
	if err := os.Remove(filepath.Join(svc, PhaseConfigFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(svc, PhaseConfigFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := FindPhaseConfig(work); err != nil || c == nil || c.AppID != "mono" {
		t.Fatalf("a directory named .phase.json in a parent: got %+v, %v", c, err)
	}
	// The work dir's own file stays strict.
	write(work, `{"appId": `)
	if _, err := FindPhaseConfig(work); !errors.Is(err, ErrConfig) {
		t.Fatalf("malformed .phase.json in the work dir: got %v, want ErrConfig", err)
	}
}

// selfSignedServer is an HTTPS server whose certificate no system pool
// trusts; pemPath holds its certificate for CAFile.
func selfSignedServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(ts.Close)
	cert := ts.Certificate()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ts, p
}

func TestNewHTTPClientTLS(t *testing.T) {
	ts, caPath := selfSignedServer(t)
	get := func(o PhaseOptions) error {
		c, err := NewHTTPClient(o)
		if err != nil {
			return err
		}
		resp, err := c.Get(ts.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(PhaseOptions{}); err == nil {
		t.Error("unknown CA accepted")
	} else {
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Logf("unknown CA error is %T", err)
		}
		if e := transportError(t.Context(), t.Context(), err); e.retry || !strings.Contains(e.msg, "unknown authority") {
			t.Errorf("unknown CA classified as %+v", e)
		}
	}
	// The zero value verifies: a caller that forgets the field fails
	// closed.
	if err := get(PhaseOptions{}); err == nil {
		t.Error("PhaseOptions{} accepted a certificate from an unknown CA")
	}
	if c, _ := NewHTTPClient(PhaseOptions{}); c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify {
		t.Error("PhaseOptions{} skips certificate checks")
	}
	if err := get(PhaseOptions{CAFile: caPath}); err != nil {
		t.Errorf("CAFile not trusted: %v", err)
	}
	if err := get(PhaseOptions{InsecureSkipVerify: true}); err != nil {
		t.Errorf("InsecureSkipVerify still verifies: %v", err)
	}
	if _, err := NewHTTPClient(PhaseOptions{CAFile: filepath.Join(t.TempDir(), "missing.pem")}); !errors.Is(err, ErrConfig) {
		t.Errorf("missing CA file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a cert"), 0o600)
	if _, err := NewHTTPClient(PhaseOptions{CAFile: empty}); !errors.Is(err, ErrConfig) {
		t.Errorf("CA file without certificates: %v", err)
	}
	c, _ := NewHTTPClient(PhaseOptions{})
	tr := c.Transport.(*http.Transport)
	if tr.Proxy == nil {
		t.Error("proxies from the environment are not used")
	}
	if tr.TLSClientConfig.MinVersion != tls.VersionTLS12 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS defaults weakened")
	}
	c, _ = NewHTTPClient(PhaseOptions{InsecureSkipVerify: true})
	if c.Transport.(*http.Transport).Proxy == nil {
		t.Error("InsecureSkipVerify dropped the proxy settings")
	}
}

func TestFetchPhaseUnknownCAIsNotRetried(t *testing.T) {
	ts, _ := selfSignedServer(t)
	o := vectorOptions(ts.URL)
	if _, err := FetchPhase(t.Context(), o); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("got %v", err)
	}
}

// The system pool is loaded once per process, so SSL_CERT_FILE and the
// embedded fallback roots are checked in a child process running the test
// binary again.
func TestSystemRootsInChild(t *testing.T) {
	if os.Getenv("PHASE_SHIM_ROOTS_CHILD") != "" {
		t.Skip("parent-only test")
	}
	ts, caPath := selfSignedServer(t)
	run := func(name string, env ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRootsChild$", "-test.v")
		cmd.Env = append(os.Environ(), append(env, "PHASE_SHIM_ROOTS_CHILD="+name, "PHASE_SHIM_ROOTS_URL="+ts.URL)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("trusts", "SSL_CERT_FILE="+caPath, "SSL_CERT_DIR=/nonexistent"); err != nil {
		t.Errorf("SSL_CERT_FILE not honoured: %v\n%s", err, out)
	}
	if out, err := run("fallback", "SSL_CERT_FILE=/nonexistent/ca.pem", "SSL_CERT_DIR=/nonexistent"); err != nil {
		t.Errorf("fallback roots not used on an image without a bundle: %v\n%s", err, out)
	}
}

func TestRootsChild(t *testing.T) {
	mode := os.Getenv("PHASE_SHIM_ROOTS_CHILD")
	if mode == "" {
		t.Skip("run by TestSystemRootsInChild")
	}
	switch mode {
	case "trusts":
		c, err := NewHTTPClient(PhaseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(os.Getenv("PHASE_SHIM_ROOTS_URL"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	case "fallback":
		// The embedded roots are registered by the first client, not at
		// program start (that would charge every run for parsing them).
		c, err := NewHTTPClient(PhaseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 the fallback pool is an ordinary pool; Subjects is accurate for it
		if n := len(pool.Subjects()); n < 50 {
			t.Fatalf("%d roots without a system bundle, want the embedded fallback set", n)
		}
		// A private CA is still refused: fallback roots are public CAs.
		if resp, err := c.Get(os.Getenv("PHASE_SHIM_ROOTS_URL")); err == nil {
			resp.Body.Close()
			t.Fatal("self-signed server trusted")
		}
	}
}

// A damaged list must never turn into "no secrets" or an empty value: the
// command would start without what it needs.
func TestDecodeSecretsResponseFailsClosed(t *testing.T) {
	const ct = "ph:v1:" + "77a788dee04a28aaa2bb44a77e18fbae614fec9717f61f96c5cd31a5e621ee00" + ":AAAA"
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`[]`, true},
		{`[{"id": "a", "key": "` + ct + `", "value": ""}]`, true},
		{`null`, false},
		{`[{"id": "a", "key": "` + ct + `"}]`, false},
		{`[{"id": "a", "key": "` + ct + `", "value": null}]`, false},
		{`[null]`, false},
	} {
		_, err := decodeSecretsResponse([]byte(c.body), false)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.body, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v is not ErrProtocol", c.body, err)
		}
	}
}

// An unresolvable ${…} is quoted in the error only when it reads like a
// reference: the text is part of a secret value.
func TestUnresolvableReferenceText(t *testing.T) {
	app := &apiApp{ID: "a", Name: "app", Envs: []apiEnv{{ID: "e", Name: "Development"}}}
	for _, c := range []struct {
		val, hidden, shown string
	}{
		{val: "pw-${s3cr!t@#}-end", hidden: "s3cr!t"},
		{val: "${NOPE}", shown: "${NOPE}"},
		{val: "${prod./backend/NOPE}", shown: "${prod./backend/NOPE}"},
	} {
		for _, mode := range []string{RefStrict, RefLenient} {
			s := &session{refMode: mode, tokens: &tokensResponse{Apps: []apiApp{*app}}, buckets: map[bucketKey]*bucket{}}
			s.buckets[bucketKey{"e", ""}] = &bucket{app: app, env: &app.Envs[0]}
			r := &resolver{s: s, memo: map[refTarget]string{}, active: map[refTarget]bool{}, warned: map[string]bool{}}
			_, err := r.expand(app, &app.Envs[0], c.val, "TOP")
			msg := strings.Join(s.warnings, "\n")
			if err != nil {
				msg = err.Error()
			}
			if msg == "" {
				t.Errorf("%s, case of %d bytes: no error and no warning", mode, len(c.val))
			}
			if c.hidden != "" && strings.Contains(msg, c.hidden) {
				t.Errorf("%s, case of %d bytes: the message quotes a non-reference ${…}", mode, len(c.val))
			}
			if c.shown != "" && !strings.Contains(msg, c.shown) {
				t.Errorf("%s: message %q does not name the reference %s", mode, msg, c.shown)
			}
		}
	}
}
