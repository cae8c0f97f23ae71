package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// The Go SDK integration fixture (spec block D): a real user token, its
// tokens response and two encrypted secrets with known plaintexts (E.4).
const gosdkToken = "pss_user:v1:9d5356eae3618da040c61b50349f291d4db9c74da5315caeb65da25ee5d0d8b7:170d014dae1a2d76130e4eb6579fe1edce5c4ea0b69794cd6a18978769120709:e1e5018e0829a1142c79afa5f70c01c8d4889b15116553d266e761851ad11197:b5b26ee93f0b68cecfa53c4a7dc8ffcb75bbecdd1f56930a9118a1e4a72b34f9"

const gosdkEnvID = "588fbfee-d572-4627-8a83-17c65702ad5d"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "phase", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameSecrets compares results reporting keys, sources and lengths only.
func sameSecrets(t testing.TB, got, want []Secret) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d secrets, want %d (keys got %v, want %v)", len(got), len(want), keysOf(got), keysOf(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Source != w.Source {
			t.Errorf("secret %d: got key %q source %q, want key %q source %q", i, g.Key, g.Source, w.Key, w.Source)
			continue
		}
		if g.Value != w.Value {
			d := 0
			for d < len(g.Value) && d < len(w.Value) && g.Value[d] == w.Value[d] {
				d++
			}
			t.Errorf("%s: got %d bytes, want %d bytes, first difference at byte %d", g.Key, len(g.Value), len(w.Value), d)
		}
	}
}

func keysOf(s []Secret) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.Key
	}
	return out
}

// vectorServer serves the spec fixtures and records what it was asked.
type vectorServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []*http.Request
	conns   atomic.Int64
	tokens  []byte
	secrets []byte
	// answer, when set, overrides the response for a request; return false
	// to fall through to the fixture.
	answer func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newVectorServer(t testing.TB, secretsFile string) *vectorServer {
	vs := &vectorServer{tokens: readVector(t, "tokens_gosdk_user.json"), secrets: readVector(t, secretsFile)}
	vs.Server = httptest.NewUnstartedServer(http.HandlerFunc(vs.serve))
	vs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			vs.conns.Add(1)
		}
	}
	vs.Start()
	t.Cleanup(vs.Close)
	return vs
}

func (vs *vectorServer) serve(w http.ResponseWriter, r *http.Request) {
	vs.mu.Lock()
	vs.reqs = append(vs.reqs, r.Clone(context.Background()))
	n := len(vs.reqs)
	vs.mu.Unlock()
	if vs.answer != nil && vs.answer(w, r, n) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer User 9d5356eae3618da040c61b50349f291d4db9c74da5315caeb65da25ee5d0d8b7" {
		w.WriteHeader(403)
		w.Write([]byte(`{"error": "Token expired or deleted"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/service/secrets/tokens/":
		w.Write(vs.tokens)
	case "/service/secrets/":
		if r.Header.Get("Environment") != gosdkEnvID {
			w.WriteHeader(401)
			w.Write([]byte(`{"error": "Environment not found"}`))
			return
		}
		w.Write(vs.secrets)
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error": "not found"}`))
	}
}

func (vs *vectorServer) requests() []*http.Request {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return append([]*http.Request(nil), vs.reqs...)
}

func vectorOptions(url string) PhaseOptions {
	return PhaseOptions{
		Token: gosdkToken, Host: url, AppID: "95721375-69c6-4e1e-b0aa-8deffca4dd5a",
		UserAgent: "phase-shim/test", RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
	}
}

var gosdkPlain = []Secret{
	{Key: "SATELLITE_HANDOFF_KEY", Value: "hndfrk_sjdh23h2j3h2", Source: "phase:/"},
	{Key: "BANDWIDTH_ALLOCATION_KEY", Value: "bwalloc_key_28dhj3j3", Source: "phase:/"},
}

func TestFetchPhaseGoSDKFixture(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	res, err := FetchPhase(context.Background(), vectorOptions(vs.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, gosdkPlain)
	want := PhaseResult{App: "example-app", Env: "Development", Path: "/", Requests: 2, Attempts: 2,
		AppID: "95721375-69c6-4e1e-b0aa-8deffca4dd5a", EnvID: gosdkEnvID}
	got := *res
	got.Secrets = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	reqs := vs.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if reqs[0].URL.Path != "/service/secrets/tokens/" || reqs[1].URL.Path != "/service/secrets/" {
		t.Errorf("paths %q, %q", reqs[0].URL.Path, reqs[1].URL.Path)
	}
	for _, r := range reqs {
		if ua := r.Header.Get("User-Agent"); ua != "phase-shim/test" {
			t.Errorf("User-Agent %q", ua)
		}
	}
	h := reqs[1].Header
	if h.Get("Environment") != gosdkEnvID || h.Get("Path") != "/" {
		t.Errorf("secrets headers: Environment %q Path %q", h.Get("Environment"), h.Get("Path"))
	}
	for _, name := range []string{"Dynamic", "Lease", "Lease-Ttl", "KeyDigest"} {
		if _, ok := h[name]; ok {
			t.Errorf("unexpected header %s", name)
		}
	}
	if n := vs.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (keep-alive)", n)
	}
}

func TestFetchPhaseAllPathsAndDuplicates(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk_multipath.json")
	o := vectorOptions(vs.URL)
	o.AllPaths = true
	res, err := FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, []Secret{
		{Key: "SATELLITE_HANDOFF_KEY", Value: "hndfrk_sjdh23h2j3h2", Source: "phase:/alpha"},
		{Key: "SATELLITE_HANDOFF_KEY", Value: "bwalloc_key_28dhj3j3", Source: "phase:/beta"},
	})
	if res.Path != "" {
		t.Errorf("Path %q, want empty for all folders", res.Path)
	}
	if _, ok := vs.requests()[1].Header["Path"]; ok {
		t.Error("Path header sent for all folders")
	}
}

// camelCase rewrites the fixture's snake_case field names the way Phase's
// camel-case renderer does.
func camelCase(b []byte) []byte {
	r := strings.NewReplacer(`"wrapped_key_share"`, `"wrappedKeyShare"`, `"environment_keys"`, `"environmentKeys"`,
		`"identity_key"`, `"identityKey"`, `"wrapped_seed"`, `"wrappedSeed"`, `"wrapped_salt"`, `"wrappedSalt"`,
		`"key_digest"`, `"keyDigest"`, `"created_at"`, `"createdAt"`, `"updated_at"`, `"updatedAt"`)
	return []byte(r.Replace(string(b)))
}

func TestFetchPhaseCamelCase(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	vs.tokens, vs.secrets = camelCase(vs.tokens), camelCase(vs.secrets)
	if bytes.Contains(vs.tokens, []byte("wrapped_key_share")) {
		t.Fatal("rewrite failed")
	}
	res, err := FetchPhase(context.Background(), vectorOptions(vs.URL))
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, gosdkPlain)
}

func TestFetchPhaseTagsFilterBeforeDecrypting(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	// Tag the second secret only; the first one's ciphertexts are broken, so
	// the test fails if anything decrypts them.
	s := string(vs.secrets)
	first := strings.Index(s, `"tags": []`)
	s = s[:first] + `"tags": ["unused"]` + s[first+len(`"tags": []`):]
	s = strings.Replace(s, "KMYbYB6PbPMlMbYkbsN", "AAAAAAAAAAAAAAAAAAA", 1)
	s = strings.Replace(s, `"tags": []`, `"tags": ["Backend_API", {"name": "other"}]`, 1)
	vs.secrets = []byte(s)
	o := vectorOptions(vs.URL)
	o.Tags = []string{"nothing", " backend api "}
	res, err := FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, gosdkPlain[1:])

	o.Tags = []string{"backend"} // exact after normalisation, not a substring
	res, err = FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, nil)
}

func TestFetchPhaseTamperedCiphertext(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	// Flip one character of the second secret's value payload.
	vs.secrets = bytes.Replace(vs.secrets, []byte("8joUdNCOQ"), []byte("8joUdNCOR"), 1)
	_, err := FetchPhase(context.Background(), vectorOptions(vs.URL))
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want ErrProtocol", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "b2a7f67f-3d59-4dd8-8462-4a7f17d63bd3") || !strings.Contains(msg, "value") {
		t.Errorf("error does not name the secret id and field: %s", msg)
	}
	for _, v := range []string{"bwalloc", "hndfrk", "BANDWIDTH", "9d5356ea"} {
		if strings.Contains(msg, v) {
			t.Errorf("error leaks %q-like material", v[:3])
		}
	}
}

func TestFetchPhaseMalformedToken(t *testing.T) {
	cases := []string{"", "pss_service:v2:abc", strings.Replace(gosdkToken, "9d5356", "zz5356", 1), gosdkToken + ":x"}
	for i, tok := range cases {
		o := vectorOptions("http://127.0.0.1:1")
		o.Token = tok
		_, err := FetchPhase(context.Background(), o)
		if !errors.Is(err, ErrAuth) {
			t.Errorf("case %d: got %v, want ErrAuth", i, err)
			continue
		}
		if len(tok) > 20 && strings.Contains(err.Error(), tok[12:40]) {
			t.Errorf("case %d: error echoes the token", i)
		}
	}
}

func TestFetchPhaseDamagedTokenShares(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	o := vectorOptions(vs.URL)
	// Same bearer (the server accepts it), damaged wrap key.
	o.Token = gosdkToken[:len(gosdkToken)-4] + "0000"
	_, err := FetchPhase(context.Background(), o)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("damaged wrap key: got %v, want ErrAuth", err)
	}
	// Damaged share 0: unwrap works, XOR gives the wrong key.
	parts := strings.Split(gosdkToken, ":")
	parts[4] = strings.Repeat("1", 64)
	o.Token = strings.Join(parts, ":")
	if _, err = FetchPhase(context.Background(), o); !errors.Is(err, ErrAuth) {
		t.Fatalf("damaged share: got %v, want ErrAuth", err)
	}
}

func TestFetchPhaseHTTPErrors(t *testing.T) {
	type tc struct {
		name     string
		status   int
		body     string
		header   [2]string
		ctype    string
		class    error
		attempts int
		contains string
	}
	cases := []tc{
		{name: "401", status: 401, body: `{"error": "Token expired or deleted"}`, class: ErrAuth, attempts: 1, contains: "Token expired or deleted"},
		{name: "403", status: 403, body: `{"error": "User cannot access this environment"}`, class: ErrAuth, attempts: 1, contains: "User cannot access"},
		{name: "404", status: 404, body: `<html>`, class: ErrConfig, attempts: 1},
		{name: "400", status: 400, body: `{"error": "bad"}`, class: ErrProtocol, attempts: 1},
		{name: "500 always", status: 500, body: `{"error": "Internal server error."}`, class: ErrUnavailable, attempts: 3, contains: "giving up after 3 attempts"},
		{name: "503 detail", status: 503, body: `{"detail": "maintenance"}`, class: ErrUnavailable, attempts: 3, contains: "maintenance"},
		{name: "429", status: 429, body: `{"error": "slow down"}`, header: [2]string{"Retry-After", "0"}, class: ErrUnavailable, attempts: 3},
		{name: "html 200", status: 200, body: `<html>portal</html>`, ctype: "text/html", class: ErrProtocol, attempts: 1, contains: "text/html"},
		{name: "garbage json", status: 200, body: `{"apps": [`, class: ErrProtocol, attempts: 1, contains: "truncated"},
		{name: "wrong shape", status: 200, body: `["a"]`, class: ErrProtocol, attempts: 1},
		{name: "no share", status: 200, body: `{"apps": []}`, class: ErrProtocol, attempts: 1},
		{name: "trailing", status: 200, body: `{"wrapped_key_share": "00", "apps": []} {}`, class: ErrProtocol, attempts: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := newVectorServer(t, "secrets_gosdk.json")
			vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if c.header[0] != "" {
					w.Header().Set(c.header[0], c.header[1])
				}
				ct := c.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
				return true
			}
			o := vectorOptions(vs.URL)
			o.MaxAttempts = 3
			res, err := FetchPhase(context.Background(), o)
			if res != nil || !errors.Is(err, c.class) {
				t.Fatalf("got %v, want %v", err, c.class)
			}
			if c.contains != "" && !strings.Contains(err.Error(), c.contains) {
				t.Errorf("error %q does not contain %q", err, c.contains)
			}
			if n := len(vs.requests()); n != c.attempts {
				t.Errorf("%d attempts, want %d", n, c.attempts)
			}
		})
	}
}

func TestFetchPhaseRetriesThenSucceeds(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch n {
		case 1:
			w.WriteHeader(502)
			return true
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return true
		case 4: // the secrets request, first try: a reset mid-body
			hj, _ := w.(http.Hijacker)
			conn, buf, _ := hj.Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"id\"")
			buf.Flush()
			conn.Close()
			return true
		}
		return false
	}
	var debug []string
	o := vectorOptions(vs.URL)
	o.Debugf = func(f string, a ...any) { debug = append(debug, f) }
	res, err := FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sameSecrets(t, res.Secrets, gosdkPlain)
	if res.Requests != 2 || res.Attempts != 5 {
		t.Errorf("requests %d attempts %d, want 2 and 5", res.Requests, res.Attempts)
	}
	if len(debug) == 0 {
		t.Error("no debug lines")
	}
}

func TestFetchPhaseRetryAfterBeyondDeadline(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(429)
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := FetchPhase(ctx, vectorOptions(vs.URL))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "beyond the deadline") {
		t.Fatalf("got %v", err)
	}
	if n := len(vs.requests()); n != 1 {
		t.Errorf("%d attempts, want 1 (no point retrying before Retry-After)", n)
	}
}

func TestFetchPhaseClosedPortAndDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o := vectorOptions("http://" + addr)
	o.MaxAttempts = 3
	_, err = FetchPhase(context.Background(), o)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed port: got %v", err)
	}

	// A server that never answers: the deadline ends it.
	vs := newVectorServer(t, "secrets_gosdk.json")
	release := make(chan struct{})
	defer close(release)
	vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	o = vectorOptions(vs.URL)
	o.AttemptTimeout = 100 * time.Millisecond
	_, err = FetchPhase(ctx, o)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("hanging server: got %v", err)
	}
}

func TestFetchPhaseContextErrors(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	cases := []struct {
		name  string
		mod   func(*PhaseOptions)
		class error
		text  string
	}{
		{"unknown app id", func(o *PhaseOptions) { o.AppID = "nope" }, ErrConfig, `"example-app (95721375-69c6-4e1e-b0aa-8deffca4dd5a)"`},
		{"unknown app name", func(o *PhaseOptions) { o.AppID, o.App = "", "shop" }, ErrConfig, "example-app"},
		{"app by substring", func(o *PhaseOptions) { o.AppID, o.App = "", "EXAMPLE" }, nil, ""},
		{"single app without flags", func(o *PhaseOptions) { o.AppID = "" }, nil, ""},
		{"unknown env", func(o *PhaseOptions) { o.Env = "prod" }, ErrConfig, `environments: "Development"`},
		{"env substring", func(o *PhaseOptions) { o.Env = "dev" }, nil, ""},
		{"bad references mode", func(o *PhaseOptions) { o.References = "loose" }, ErrConfig, "loose"},
		{"bad host", func(o *PhaseOptions) { o.Host = "ftp://x" }, ErrConfig, "ftp://x"},
		{"host with credentials", func(o *PhaseOptions) { o.Host = "https://u:p@x" }, ErrConfig, "https://x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := vectorOptions(vs.URL)
			c.mod(&o)
			res, err := FetchPhase(context.Background(), o)
			if c.class == nil {
				if err != nil {
					t.Fatal(err)
				}
				sameSecrets(t, res.Secrets, gosdkPlain)
				return
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v containing %q", err, c.class, c.text)
			}
			if strings.Contains(err.Error(), "u:p") {
				t.Error("host credentials echoed")
			}
		})
	}
}

func TestFetchPhaseDotPhaseJSON(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	root := t.TempDir()
	sub := filepath.Join(root, "services", "api")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(dir, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, ".phase.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := vectorOptions(vs.URL)
	o.AppID, o.WorkDir = "", sub

	// A parent config without monorepoSupport is ignored; with only one app
	// visible the token's app is used anyway, so point it somewhere wrong to
	// see the difference.
	write(root, `{"appId": "wrong", "defaultEnv": "Development"}`)
	res, err := FetchPhase(context.Background(), o)
	if err != nil || res.ConfigFile != "" {
		t.Fatalf("non-monorepo parent config used: %v %q", err, res.ConfigFile)
	}
	write(root, `{"appId": "wrong", "monorepoSupport": true}`)
	if _, err := FetchPhase(context.Background(), o); !errors.Is(err, ErrConfig) {
		t.Fatalf("monorepo parent config not used: %v", err)
	}
	write(sub, `{"version": "2", "phaseApp": "example-app", "appId": "95721375-69c6-4e1e-b0aa-8deffca4dd5a", "defaultEnv": "dev"}`)
	res, err = FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Env != "Development" || res.ConfigFile != filepath.Join(sub, ".phase.json") {
		t.Errorf("env %q config %q", res.Env, res.ConfigFile)
	}
	write(sub, `{"appId": 12}`)
	if _, err := FetchPhase(context.Background(), o); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad .phase.json: got %v, want ErrConfig", err)
	}
	write(sub, `{not json`)
	if _, err := FetchPhase(context.Background(), o); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad .phase.json: got %v, want ErrConfig", err)
	}
	// An explicit app skips the file entirely.
	o.App = "example"
	if _, err := FetchPhase(context.Background(), o); err != nil {
		t.Fatalf("--app with a broken .phase.json: %v", err)
	}
}

// The Node SDK fixtures (spec block C): a user token and a service-account
// token over the same three environments. The Development secrets are the
// libsodium known-answer ciphertexts of block E.5 ("API_KEY" and a value
// that references it), so key derivation, decryption and references are
// checked against answers computed by another implementation.
func TestFetchPhaseNodeFixtures(t *testing.T) {
	const (
		ctAPIKey = "ph:v1:ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b:LYSIlXUNcOTyZXUCon2TyPKWJTDOR2ZVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU="
		ctDSN    = "ph:v1:219e4d800da968d2a5fcb009c784f4746c7138edb9ee4844b739e830b05cf424:Pm3MVJpnWsxphtxilEroTaPga0GlYuSIhnoh8GdUjwFAzLOtRbcnKBsdC9mgWb+ZnSd21+N17mhzlqCwBgABAgMEBQYHCAkKCwwNDg8QERITFBUWFw=="
		devEnvID = "52db76e0-16a0-4b39-b2a9-bb518cd1b6a6"
		devPk    = "2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20"
	)
	dsnName, err := phasecrypto.Encrypt([]byte("DSN"), devPk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secrets := `[{"id": "s1", "key": "` + ctAPIKey + `", "value": "` + ctAPIKey + `", "comment": "not-a-ciphertext", "path": "/", "tags": []},
	             {"id": "s2", "key": "` + dsnName + `", "value": "` + ctDSN + `", "comment": "", "path": "/", "tags": []}]`
	tokens := map[string]struct{ token, file, header string }{
		"user": {
			"pss_user:v1:6759ecdb7307cb2a1994fe397bd690725cdfabbda952e4cc568fc5e3e0286a3d:b8f2214246b79a20dfcd62870e7e6a48343f9c7fcdfb7d664175ac11a76bce10:451f1dce52290ee0a4d8f4b8f9fe0a946447e288ff1b10b494fdd5fe28ed4ab8:959c5fe47a3b35cd8278890ce208a318d5411aa1cf06d5fc2cbe8af41904544e",
			"tokens_user.json", "Bearer User 6759ecdb7307cb2a1994fe397bd690725cdfabbda952e4cc568fc5e3e0286a3d",
		},
		"service account": {
			"pss_service:v2:048c9daa773b2d9bb21a1dda69a56f2b895401fded26889c7063c72224a61f65:fc065f7e5e1093292b20d0c917968cbe3badfb2e82bf1caa70649b72d0017905:1bb35376aacb277fd2792d781dbff5d0e9f7547da3544f4d394ff027d91436d5:4a04b7a5100c67cbf6376f8dae1ca936ca17bcbc119a4a84f8e3727696460925",
			"tokens_service_account.json", "Bearer ServiceAccount 048c9daa773b2d9bb21a1dda69a56f2b895401fded26889c7063c72224a61f65",
		},
	}
	for name, tk := range tokens {
		t.Run(name, func(t *testing.T) {
			body := readVector(t, tk.file)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != tk.header {
					w.WriteHeader(403)
					return
				}
				switch {
				case r.URL.Path == "/service/secrets/tokens/":
					w.Write(body)
				case r.Header.Get("Environment") == devEnvID:
					w.Write([]byte(secrets))
				default:
					w.Write([]byte(`[]`))
				}
			}))
			defer ts.Close()
			o := PhaseOptions{Token: tk.token, Host: ts.URL, App: "test"}
			res, err := FetchPhase(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			sameSecrets(t, res.Secrets, []Secret{
				{Key: "API_KEY", Value: "API_KEY", Source: "phase:/"},
				{Key: "DSN", Value: "postgres://user:p@ss@db:5432/app?x=API_KEY", Source: "phase:/"},
			})
			o.Env = "prod"
			res, err = FetchPhase(context.Background(), o)
			if err != nil || res.Env != "Production" || len(res.Secrets) != 0 {
				t.Fatalf("prod: %v", err)
			}
		})
	}
}

// A lease-creating request whose kept-alive connection dies after the
// server read it must not be sent again, by our retry loop or by
// net/http's transparent replay of idempotent requests: the server may
// have minted the leases. The request still looks like a plain GET.
func TestFetchPhaseLeaseRequestNeverReplayed(t *testing.T) {
	vs := newVectorServer(t, "secrets_gosdk.json")
	var leaseReqs atomic.Int64
	vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path != "/service/secrets/" {
			return false
		}
		leaseReqs.Add(1)
		if r.ContentLength != 0 || len(r.TransferEncoding) != 0 || r.Header.Get("Content-Length") != "" {
			t.Errorf("lease request carries a body: length %d, transfer encoding %q", r.ContentLength, r.TransferEncoding)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
	o := vectorOptions(vs.URL)
	o.GenerateLeases = true
	res, err := FetchPhase(context.Background(), o)
	if res != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "not retried") {
		t.Errorf("error %q does not say why it was not retried", err)
	}
	if n := leaseReqs.Load(); n != 1 {
		t.Errorf("the server saw the lease request %d times, want 1", n)
	}
	if vs.conns.Load() != 1 {
		t.Errorf("%d connections: the lease request did not reuse the kept-alive one", vs.conns.Load())
	}
}

// Without MaxAttempts the deadline alone bounds retries; without a
// deadline the default cap keeps the loop finite.
func TestFetchPhaseAttemptLimit(t *testing.T) {
	failing := func(vs *vectorServer, failures int) {
		vs.answer = func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n > failures {
				return false
			}
			w.WriteHeader(503)
			return true
		}
	}
	vs := newVectorServer(t, "secrets_gosdk.json")
	failing(vs, 12)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := FetchPhase(ctx, vectorOptions(vs.URL))
	if err != nil {
		t.Fatalf("with a deadline: %v", err)
	}
	if res.Attempts != 14 {
		t.Errorf("with a deadline: %d attempts, want 14 (12 failures, then tokens and secrets)", res.Attempts)
	}

	vs = newVectorServer(t, "secrets_gosdk.json")
	failing(vs, 12)
	_, err = FetchPhase(context.Background(), vectorOptions(vs.URL))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "giving up after 8 attempts") {
		t.Errorf("without a deadline: %v", err)
	}
}
