package fetch_test

// End-to-end tests of FetchPhase against the in-process emulator
// (fetch/phasetest), which serves real ciphertexts built from plaintext
// fixtures. An external test package, so the emulator may import fetch.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

func e2eFixture() phasetest.Fixture {
	return phasetest.Fixture{Apps: []phasetest.App{
		{Name: "shop", Envs: []phasetest.Env{
			{Name: "Development", Secrets: []phasetest.Secret{
				{Key: "DEBUG", Value: "true", Override: &phasetest.Override{Value: "false", Active: true}},
				{Key: "LOG", Value: "info", Override: &phasetest.Override{Value: "trace", Active: false}},
			}},
			{Name: "Staging", Secrets: []phasetest.Secret{
				{Key: "STRIPE_KEY", Value: "sk_test_staging"},
			}, Dynamic: []phasetest.DynamicSecret{{
				Name:        "aws-creds",
				Credentials: []phasetest.Credential{{Key: "AWS_ACCESS_KEY_ID", Value: "AKIA"}, {Key: "AWS_SECRET_ACCESS_KEY", Value: "s3cr3t"}},
			}}},
			{Name: "Production", Secrets: []phasetest.Secret{
				{Key: "DATABASE_URL", Value: `postgres://u:p@ss w"'$HOME*@db/shop `, Tags: []string{"database"}},
				{Key: "DB_DSN", Value: "${DATABASE_URL}"},
				{Key: "NESTED", Value: "x-${DB_DSN}-${DB_DSN}-y"},
				{Key: "WEBHOOK", Value: "${/backend/WEBHOOK_SECRET}"},
				{Key: "WEBHOOK2", Value: "${backend/WEBHOOK_SECRET}"},
				{Key: "STAGING_STRIPE", Value: "${staging.STRIPE_KEY}"},
				{Key: "BILLING_URL", Value: "${billing::prod.API_URL}"},
				{Key: "RAILWAY", Value: "${{RAILWAY_TOKEN}} and ${} and ${unclosed"},
				{Key: "multi\nline", Value: "line1\nline2\n", Tags: []string{"Hostile_Names"}},
				// billing's API_URL says ${HOST}: it must resolve in billing,
				// not here (spec F, "web/prod" case).
				{Key: "HOST", Value: "web-host"},
				{Path: "/backend", Key: "WEBHOOK_SECRET", Value: "whsec_backend"},
				{Path: "/backend", Key: "ROOT_DB", Value: "${DATABASE_URL}"},
			}},
		}},
		{Name: "billing", Envs: []phasetest.Env{
			{Name: "Production", Secrets: []phasetest.Secret{
				{Key: "API_URL", Value: "https://${HOST}/v1"},
				{Key: "HOST", Value: "billing.internal"},
			}},
		}},
		{Name: "refs", Envs: []phasetest.Env{
			{Name: "Development", Secrets: []phasetest.Secret{
				{Key: "CYCLE_A", Value: "${CYCLE_B}", Tags: []string{"cycle"}},
				{Key: "CYCLE_B", Value: "b${CYCLE_A}"},
				{Key: "SELF", Value: "${SELF}", Tags: []string{"self"}},
				{Key: "MISSING", Value: "a ${NOPE} b ${prod.X} c ${other::dev.Y} d ${nope::dev.Y}", Tags: []string{"missing"}},
				{Key: "CROSS_NO_ENV", Value: "${billing::API_URL}", Tags: []string{"crossnoenv"}},
				{Key: "OK", Value: "ok", Tags: []string{"missing"}},
				{Key: "USES_UNTAGGED", Value: "[${UNTAGGED}]", Tags: []string{"untagged"}},
				{Key: "UNTAGGED", Value: "plain"},
			}},
		}},
	}}
}

func e2eOptions(s *phasetest.Server, kind, app, env string) fetch.PhaseOptions {
	return fetch.PhaseOptions{
		Token: s.Token(app, kind), Host: s.URL(), App: app, Env: env,
		UserAgent: "phase-shim/e2e",
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond,
	}
}

func checkSecrets(t *testing.T, got []fetch.Secret, want []fetch.Secret) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d secrets %v, want %d %v", len(got), keys(got), len(want), keys(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Source != w.Source {
			t.Errorf("secret %d: got %q from %q, want %q from %q", i, g.Key, g.Source, w.Key, w.Source)
		} else if g.Value != w.Value {
			d := 0
			for d < len(g.Value) && d < len(w.Value) && g.Value[d] == w.Value[d] {
				d++
			}
			t.Errorf("%q: got %d bytes, want %d bytes, first difference at byte %d", g.Key, len(g.Value), len(w.Value), d)
		}
	}
}

func keys(s []fetch.Secret) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.Key
	}
	return out
}

var prodRoot = []fetch.Secret{
	{Key: "DATABASE_URL", Value: `postgres://u:p@ss w"'$HOME*@db/shop `, Source: "phase:/"},
	{Key: "DB_DSN", Value: `postgres://u:p@ss w"'$HOME*@db/shop `, Source: "phase:/"},
	{Key: "NESTED", Value: `x-postgres://u:p@ss w"'$HOME*@db/shop -postgres://u:p@ss w"'$HOME*@db/shop -y`, Source: "phase:/"},
	{Key: "WEBHOOK", Value: "whsec_backend", Source: "phase:/"},
	{Key: "WEBHOOK2", Value: "whsec_backend", Source: "phase:/"},
	{Key: "STAGING_STRIPE", Value: "sk_test_staging", Source: "phase:/"},
	{Key: "BILLING_URL", Value: "https://billing.internal/v1", Source: "phase:/"},
	{Key: "RAILWAY", Value: "${{RAILWAY_TOKEN}} and ${} and ${unclosed", Source: "phase:/"},
	{Key: "multi\nline", Value: "line1\nline2\n", Source: "phase:/"},
	{Key: "HOST", Value: "web-host", Source: "phase:/"},
}

func TestE2ETokenKindsAndReferences(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	for _, kind := range []string{phasetest.ServiceV1, phasetest.ServiceV2, phasetest.User} {
		t.Run(kind, func(t *testing.T) {
			if kind == phasetest.ServiceV1 {
				// A v1 token is scoped to one app: cross-app references
				// cannot resolve, so use lenient and check the warning.
				o := e2eOptions(s, kind, "shop", "prod")
				o.References = fetch.RefLenient
				s.ResetCounts()
				res, err := fetch.FetchPhase(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				want := append([]fetch.Secret(nil), prodRoot...)
				want[6].Value = "${billing::prod.API_URL}"
				checkSecrets(t, res.Secrets, want)
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "BILLING_URL") || !strings.Contains(res.Warnings[0], "billing::prod.API_URL") {
					t.Errorf("warnings %q", res.Warnings)
				}
				return
			}
			s.ResetCounts()
			conns := s.Connections()
			res, err := fetch.FetchPhase(context.Background(), e2eOptions(s, kind, "shop", "prod"))
			if err != nil {
				t.Fatal(err)
			}
			checkSecrets(t, res.Secrets, prodRoot)
			if res.App != "shop" || res.Env != "Production" || res.Path != "/" || len(res.Warnings) != 0 {
				t.Errorf("result %q %q %q %q", res.App, res.Env, res.Path, res.Warnings)
			}
			// tokens + main folder + /backend + Staging + billing/Production,
			// each once, although /backend is referenced twice.
			c := s.Requests()
			if c.Tokens != 1 || c.SecretsGet != 4 || res.Requests != 5 || res.Attempts != 5 {
				t.Errorf("tokens %d, secrets %d, result requests %d attempts %d; want 1, 4, 5, 5", c.Tokens, c.SecretsGet, res.Requests, res.Attempts)
			}
			if n := s.Connections() - conns; n != 1 {
				t.Errorf("%d new connections, want 1", n)
			}
		})
	}
}

func TestE2EOverridesOnlyForUsers(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	for kind, debug := range map[string]string{phasetest.User: "false", phasetest.ServiceV2: "true"} {
		res, err := fetch.FetchPhase(context.Background(), e2eOptions(s, kind, "shop", ""))
		if err != nil {
			t.Fatal(err)
		}
		checkSecrets(t, res.Secrets, []fetch.Secret{
			{Key: "DEBUG", Value: debug, Source: "phase:/"},
			{Key: "LOG", Value: "info", Source: "phase:/"}, // inactive override
		})
		if res.Env != "Development" {
			t.Errorf("default env %q", res.Env)
		}
	}
}

func TestE2ELocalReferencesCostNothing(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	o := e2eOptions(s, phasetest.ServiceV2, "shop", "Production")
	o.AllPaths = true
	o.Tags = []string{"DATABASE"}
	s.ResetCounts()
	res, err := fetch.FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkSecrets(t, res.Secrets, prodRoot[:1])
	// A folder reference inside an all-folders fetch is local too.
	o.Tags = nil
	res, err = fetch.FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Requests(); got.SecretsGet != 2+2 {
		// Per run: the main request, Staging and billing; /backend is local.
		t.Errorf("%d secrets requests over two runs, want 4 (1 + 3)", got.SecretsGet)
	}
	if n := len(res.Secrets); n != len(prodRoot)+2 {
		t.Errorf("%d secrets, want %d", n, len(prodRoot)+2)
	}
	last := res.Secrets[len(res.Secrets)-1]
	if last.Key != "ROOT_DB" || last.Source != "phase:/backend" || last.Value != prodRoot[0].Value {
		t.Errorf("ROOT_DB from %q did not resolve to the root DATABASE_URL", last.Source)
	}
}

func TestE2EReferenceErrors(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	cases := []struct {
		tag, mode string
		class     error
		contains  []string
		want      []fetch.Secret
		warnings  int
	}{
		{tag: "cycle", mode: fetch.RefStrict, class: fetch.ErrData, contains: []string{"CYCLE_A", "circular reference", "CYCLE_A → CYCLE_B → CYCLE_A"}},
		{tag: "cycle", mode: fetch.RefLenient, class: fetch.ErrData, contains: []string{"circular reference"}},
		{tag: "self", mode: fetch.RefStrict, class: fetch.ErrData, contains: []string{"SELF → SELF"}},
		{tag: "missing", mode: fetch.RefStrict, class: fetch.ErrData, contains: []string{`secret "MISSING"`, "${NOPE}", `no key "NOPE"`}},
		{tag: "crossnoenv", mode: fetch.RefStrict, class: fetch.ErrData, contains: []string{"must specify an environment"}},
		{tag: "missing", mode: fetch.RefLenient, warnings: 4, want: []fetch.Secret{
			{Key: "MISSING", Value: "a ${NOPE} b ${prod.X} c ${other::dev.Y} d ${nope::dev.Y}", Source: "phase:/"},
			{Key: "OK", Value: "ok", Source: "phase:/"},
		}},
		{tag: "cycle", mode: fetch.RefRaw, want: []fetch.Secret{{Key: "CYCLE_A", Value: "${CYCLE_B}", Source: "phase:/"}}},
		{tag: "untagged", mode: fetch.RefStrict, want: []fetch.Secret{{Key: "USES_UNTAGGED", Value: "[plain]", Source: "phase:/"}}},
	}
	for _, c := range cases {
		t.Run(c.tag+"/"+c.mode, func(t *testing.T) {
			o := e2eOptions(s, phasetest.ServiceV2, "refs", "")
			o.Tags, o.References = []string{c.tag}, c.mode
			s.ResetCounts()
			res, err := fetch.FetchPhase(context.Background(), o)
			if c.class != nil {
				if !errors.Is(err, c.class) {
					t.Fatalf("got %v, want %v", err, c.class)
				}
				for _, want := range c.contains {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSecrets(t, res.Secrets, c.want)
			if len(res.Warnings) != c.warnings {
				t.Errorf("warnings %q, want %d", res.Warnings, c.warnings)
			}
			if c.mode == fetch.RefRaw && s.Requests().Total != 2 {
				t.Errorf("raw made %d requests", s.Requests().Total)
			}
		})
	}
}

func TestE2EDynamicSecretsOnlyWithLeases(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	o := e2eOptions(s, phasetest.ServiceV2, "shop", "staging")
	res, err := fetch.FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Secrets) != 1 || s.LeasesCreated() != 0 {
		t.Fatalf("without leases: %v, %d leases", keys(res.Secrets), s.LeasesCreated())
	}
	o.GenerateLeases, o.LeaseTTL = true, 90*time.Second
	o.Tags = []string{"no-such-tag"} // dynamic secrets carry no tags and are kept
	res, err = fetch.FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(res.Secrets); len(got) != 2 || got[0] != "AWS_ACCESS_KEY_ID" || got[1] != "AWS_SECRET_ACCESS_KEY" {
		t.Fatalf("with leases: %v", got)
	}
	if !strings.HasPrefix(res.Secrets[0].Value, "AKIA") || !strings.HasPrefix(res.Secrets[1].Value, "s3cr3t") {
		t.Error("lease credentials do not carry the fixture values")
	}
	if s.LeasesCreated() != 1 {
		t.Errorf("%d leases, want 1", s.LeasesCreated())
	}
	var leaseHeaders [][3]string
	for _, r := range s.Log() {
		if r.Endpoint == phasetest.EndpointSecrets {
			leaseHeaders = append(leaseHeaders, [3]string{r.Header.Get("dynamic"), r.Header.Get("lease"), r.Header.Get("lease-ttl")})
		}
	}
	want := [][3]string{{"", "", ""}, {"true", "true", "90"}}
	if fmt.Sprint(leaseHeaders) != fmt.Sprint(want) {
		t.Errorf("dynamic/lease/lease-ttl headers %q, want %q", leaseHeaders, want)
	}
}

// camelTransport asks for camelCase answers as the Node SDK does.
type camelTransport struct{ http.RoundTripper }

func (c camelTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Use-Camel-Case", "true")
	return c.RoundTripper.RoundTrip(r)
}

func TestE2ECamelCase(t *testing.T) {
	s := phasetest.New(e2eFixture())
	defer s.Close()
	for _, kind := range []string{phasetest.User, phasetest.ServiceV2} {
		o := e2eOptions(s, kind, "shop", "")
		o.HTTPClient = &http.Client{Transport: camelTransport{http.DefaultTransport}}
		res, err := fetch.FetchPhase(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		want := "true"
		if kind == phasetest.User {
			want = "false" // override.isActive read in camelCase
		}
		if res.Secrets[0].Value != want {
			t.Errorf("%s: DEBUG override not applied from a camelCase answer", kind)
		}
	}
}

func TestE2EFaults(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(s *phasetest.Server, o *fetch.PhaseOptions)
		class    error // nil: success
		attempts int
	}{
		{"503 twice then ok", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.FailFirst(2, 503) }, nil, 4},
		{"429 with Retry-After", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.TooManyRequests(1, "1") }, nil, 3},
		{"429 with HTTP date", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.TooManyRequests(1, time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
		}, nil, 3},
		{"500 forever", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.FailFirst(100, 500) }, fetch.ErrUnavailable, 3},
		{"401 never retried", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.FailFirst(5, 401) }, fetch.ErrAuth, 1},
		{"403 never retried", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.FailFirst(5, 403) }, fetch.ErrAuth, 1},
		{"expired token", func(s *phasetest.Server, o *fetch.PhaseOptions) { s.ExpireToken(o.Token) }, fetch.ErrAuth, 1},
		{"wrong token", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			o.Token = o.Token[:20] + strings.Repeat("0", 44) + o.Token[64:]
		}, fetch.ErrAuth, 1},
		{"unknown env", func(s *phasetest.Server, o *fetch.PhaseOptions) { o.Env = "qa" }, fetch.ErrConfig, 1},
		{"tampered", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			if err := s.TamperSecret("shop", "Staging", "STRIPE_KEY"); err != nil {
				panic(err)
			}
		}, fetch.ErrProtocol, 2},
		{"truncated", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.Inject(phasetest.Fault{Kind: phasetest.FaultTruncate, Endpoint: phasetest.EndpointSecrets, Count: 1})
		}, fetch.ErrProtocol, 2},
		{"reset mid-body", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.Inject(phasetest.Fault{Kind: phasetest.FaultReset, Endpoint: phasetest.EndpointSecrets, Count: 1})
		}, nil, 3},
		{"wrong content type", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.Inject(phasetest.Fault{Kind: phasetest.FaultWrongContentType, Endpoint: phasetest.EndpointTokens, Count: 1})
		}, fetch.ErrProtocol, 1},
		{"garbage", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.Inject(phasetest.Fault{Kind: phasetest.FaultGarbageJSON, Endpoint: phasetest.EndpointSecrets, Count: 1})
		}, fetch.ErrProtocol, 2},
		{"wrong shape", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			s.Inject(phasetest.Fault{Kind: phasetest.FaultWrongShape, Endpoint: phasetest.EndpointTokens, Count: 1})
		}, fetch.ErrProtocol, 1},
		{"slow headers", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			o.AttemptTimeout = 200 * time.Millisecond
			s.Inject(phasetest.Fault{Kind: phasetest.FaultSlowHeaders, Endpoint: phasetest.EndpointTokens, Count: 1, Delay: 5 * time.Second})
		}, nil, 3},
		{"slow body", func(s *phasetest.Server, o *fetch.PhaseOptions) {
			o.AttemptTimeout = 200 * time.Millisecond
			s.Inject(phasetest.Fault{Kind: phasetest.FaultSlowBody, Endpoint: phasetest.EndpointSecrets, Count: 1, Delay: 5 * time.Second})
		}, nil, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := phasetest.New(e2eFixture())
			defer s.Close()
			o := e2eOptions(s, phasetest.ServiceV2, "shop", "staging")
			o.MaxAttempts = 3
			c.setup(s, &o)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := fetch.FetchPhase(ctx, o)
			if c.class == nil {
				if err != nil {
					t.Fatal(err)
				}
				checkSecrets(t, res.Secrets, []fetch.Secret{{Key: "STRIPE_KEY", Value: "sk_test_staging", Source: "phase:/"}})
				if res.Attempts != c.attempts {
					t.Errorf("%d attempts, want %d", res.Attempts, c.attempts)
				}
				return
			}
			if res != nil || !errors.Is(err, c.class) {
				t.Fatalf("got %v, want %v", err, c.class)
			}
			if strings.Contains(err.Error(), "sk_test") || strings.Contains(err.Error(), o.Token[20:60]) {
				t.Error("error leaks a value or the token")
			}
			if n := s.Requests().Total; int(n) != c.attempts {
				t.Errorf("%d requests, want %d", n, c.attempts)
			}
		})
	}
}

// BenchmarkFetchPhase is a whole fetch (two requests, decryption) of N
// secrets from the emulator over loopback HTTP.
func BenchmarkFetchPhase(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			s := phasetest.New(phasetest.Large(n))
			defer s.Close()
			o := e2eOptions(s, phasetest.ServiceV2, "large", "Production")
			b.ReportAllocs()
			for b.Loop() {
				res, err := fetch.FetchPhase(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Secrets) != n {
					b.Fatalf("%d secrets", len(res.Secrets))
				}
			}
		})
	}
}

// A request that creates leases is not repeated after a failure the server
// may have processed (a 5xx), but is after a 429 refusal.
func TestE2ELeaseRequestRetries(t *testing.T) {
	for _, c := range []struct {
		status  int
		ok      bool
		secrets int64
	}{{503, false, 1}, {429, true, 2}} {
		s := phasetest.New(e2eFixture())
		o := e2eOptions(s, phasetest.ServiceV2, "shop", "staging")
		o.GenerateLeases = true
		s.Inject(phasetest.Fault{Kind: phasetest.FaultStatus, Endpoint: phasetest.EndpointSecrets, Count: 1, Status: c.status, RetryAfter: "0"})
		res, err := fetch.FetchPhase(context.Background(), o)
		if c.ok {
			if err != nil || len(res.Secrets) != 3 || s.LeasesCreated() != 1 {
				t.Errorf("%d: %v, leases %d", c.status, err, s.LeasesCreated())
			}
		} else if !errors.Is(err, fetch.ErrUnavailable) || !strings.Contains(err.Error(), "not retried") {
			t.Errorf("%d: got %v", c.status, err)
		}
		if got := s.Requests().SecretsGet; got != c.secrets {
			t.Errorf("%d: %d secrets requests, want %d", c.status, got, c.secrets)
		}
		s.Close()
	}
}

func TestE2ETLS(t *testing.T) {
	s := phasetest.New(e2eFixture(), phasetest.WithTLS())
	defer s.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	o := e2eOptions(s, phasetest.ServiceV2, "shop", "staging")
	if !strings.HasPrefix(o.Host, "https://") {
		t.Fatalf("emulator is not serving TLS: %s", o.Host)
	}

	_, err := fetch.FetchPhase(context.Background(), o)
	if !errors.Is(err, fetch.ErrUnavailable) || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("untrusted CA: got %v", err)
	}
	if n := s.Requests().Total; n != 0 {
		t.Errorf("%d requests reached the server through an untrusted certificate", n)
	}

	o.CAFile = ca
	conns := s.Connections()
	res, err := fetch.FetchPhase(context.Background(), o)
	if err != nil {
		t.Fatalf("with --ca-file: %v", err)
	}
	checkSecrets(t, res.Secrets, []fetch.Secret{{Key: "STRIPE_KEY", Value: "sk_test_staging", Source: "phase:/"}})
	if n := s.Connections() - conns; n != 1 {
		t.Errorf("%d TLS connections for two requests, want 1", n)
	}

	o.CAFile, o.InsecureSkipVerify = "", true
	if _, err := fetch.FetchPhase(context.Background(), o); err != nil {
		t.Fatalf("InsecureSkipVerify: %v", err)
	}
}

// Debug lines, warnings and errors may name keys, apps, folders and
// reference text, never a value or the token.
func TestE2EDiagnosticsNeverCarryValues(t *testing.T) {
	f := e2eFixture()
	var values []string
	for _, a := range f.Apps {
		for _, e := range a.Envs {
			for _, sec := range e.Secrets {
				if !strings.Contains(sec.Value, "${") {
					values = append(values, sec.Value)
				}
				if sec.Override != nil {
					values = append(values, sec.Override.Value)
				}
			}
			for _, d := range e.Dynamic {
				for _, c := range d.Credentials {
					values = append(values, c.Value)
				}
			}
		}
	}
	s := phasetest.New(f)
	defer s.Close()
	var lines []string
	seen := 0
	for _, tc := range []struct {
		app, env, mode string
		tags           []string
		fault          func()
	}{
		{"shop", "prod", fetch.RefStrict, nil, func() { s.FailFirst(2, 503) }},
		{"shop", "dev", fetch.RefStrict, nil, nil},
		{"shop", "staging", fetch.RefStrict, nil, func() { s.TamperSecret("shop", "Staging", "STRIPE_KEY") }},
		{"refs", "dev", fetch.RefLenient, []string{"missing"}, nil},
		{"refs", "dev", fetch.RefStrict, []string{"missing"}, nil},
		{"refs", "dev", fetch.RefStrict, []string{"cycle"}, nil},
	} {
		o := e2eOptions(s, phasetest.User, tc.app, tc.env)
		o.References, o.Tags = tc.mode, tc.tags
		o.GenerateLeases = true
		o.Debugf = func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
		if tc.fault != nil {
			tc.fault()
		}
		res, err := fetch.FetchPhase(context.Background(), o)
		if err != nil {
			lines = append(lines, err.Error())
		} else {
			lines = append(lines, res.Warnings...)
		}
		for _, l := range lines {
			for _, v := range values {
				if len(v) >= 4 && strings.Contains(l, v) {
					t.Errorf("a diagnostic line carries the value of a secret (%d bytes)", len(v))
				}
			}
			if strings.Contains(l, o.Token[20:60]) {
				t.Error("a diagnostic line carries the token")
			}
		}
		seen += len(lines)
		lines = lines[:0]
	}
	if seen < 20 {
		t.Errorf("only %d diagnostic lines checked", seen)
	}
}
