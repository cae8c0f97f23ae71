package phasetest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

func TestRoundTripEveryTokenKind(t *testing.T) {
	f := DemoFixture()
	s := New(f)
	defer s.Close()
	for _, kind := range []string{ServiceV1, ServiceV2, User} {
		t.Run(kind, func(t *testing.T) {
			c := newClient(t, s, s.Token("shop", kind))
			k := c.keys("shop", "Production")
			if got, want := k.pkHexSrv, hexOf(k.pk); got != want {
				t.Errorf("identity_key differs from the seed-derived public key")
			}
			if k.id != s.EnvID("shop", "Production") {
				t.Errorf("environment id mismatch")
			}
			got, _ := c.read(k, nil)
			compareSecrets(t, got, fixtureSecrets(f, "shop", "Production"))
		})
	}
}

func hexOf(b [32]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, x := range b {
		out[2*i], out[2*i+1] = digits[x>>4], digits[x&15]
	}
	return string(out)
}

func TestTokensBodyShape(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	for _, tc := range []struct {
		kind            string
		user, acct, off bool
	}{{ServiceV1, false, false, false}, {ServiceV2, false, true, true}, {User, true, false, true}} {
		c := newClient(t, s, s.Token("shop", tc.kind))
		c.camel = true // must not change the tokens endpoint
		_, _, b := c.do("GET", "/service/secrets/tokens/", nil, nil)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		_, hasUser := m["user_id"]
		_, hasAcct := m["account_id"]
		_, hasOff := m["offline_enabled"]
		if hasUser != tc.user || hasAcct != tc.acct || hasOff != tc.off {
			t.Errorf("%s: user_id %v account_id %v offline_enabled %v", tc.kind, hasUser, hasAcct, hasOff)
		}
		if _, ok := m["wrapped_key_share"]; !ok {
			t.Errorf("%s: no wrapped_key_share (snake_case is required even with X-Use-Camel-Case)", tc.kind)
		}
		if tc.kind == ServiceV2 && m["account_id"] != s.AccountID("shop", ServiceV2) {
			t.Errorf("account_id is not AccountID")
		}
	}
}

func TestCamelCaseAndPrefix(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", User))
	k := c.keys("shop", "Development")
	for _, tc := range []struct {
		path  string
		camel bool
		want  string
		not   string
	}{
		{"/service/secrets/", false, `"key_digest"`, `"keyDigest"`},
		{"/service/secrets/", true, `"keyDigest"`, `"key_digest"`},
		{"/secrets/", false, `"is_active"`, `"isActive"`},
		{"/secrets/", true, `"isActive"`, `"is_active"`},
	} {
		c.camel = tc.camel
		st, _, b := c.do("GET", tc.path, map[string]string{"Environment": k.id}, nil)
		if st != 200 || !bytes.Contains(b, []byte(tc.want)) || bytes.Contains(b, []byte(tc.not)) {
			t.Errorf("%s camel=%v: status %d, want %s and no %s", tc.path, tc.camel, st, tc.want, tc.not)
		}
	}
	// X-Use-Camel-Case must be exactly "true".
	c.camel = false
	_, _, b := c.do("GET", "/secrets/", map[string]string{"Environment": k.id, "X-Use-Camel-Case": "True"}, nil)
	if !bytes.Contains(b, []byte(`"key_digest"`)) {
		t.Errorf(`"True" switched to camelCase`)
	}
}

func TestPersonalOverride(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	for _, tc := range []struct {
		kind string
		want string
	}{{User, "false"}, {ServiceV2, "true"}, {ServiceV1, "true"}} {
		c := newClient(t, s, s.Token("shop", tc.kind))
		got, _ := c.read(c.keys("shop", "Development"), nil)
		for _, p := range got {
			if p.Key == "DEBUG" && p.Value != tc.want {
				t.Errorf("%s: DEBUG: %s", tc.kind, lengthDiff(p.Value, tc.want))
			}
		}
	}
}

func TestFilters(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", ServiceV2))
	k := c.keys("shop", "Production")
	keysOf := func(ps []plain) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Key)
		}
		return out
	}
	all := []string{"STRIPE_KEY", "DATABASE_URL", "SECRET_KEY?", "my-key", "TLS_PRIVATE_KEY", "DB_DSN", "GREETING"}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want []string
	}{
		{"no path: every folder", nil, append(append([]string{}, all...), "PAYMENTS_WEBHOOK_SECRET")},
		{"root", map[string]string{"Path": "/"}, all},
		{"folder", map[string]string{"Path": "/backend"}, []string{"PAYMENTS_WEBHOOK_SECRET"}},
		{"folder normalised", map[string]string{"Path": "backend//"}, []string{"PAYMENTS_WEBHOOK_SECRET"}},
		{"exact, not prefix", map[string]string{"Path": "/back"}, nil},
		{"digest", map[string]string{"KeyDigest": phasecrypto.Digest("my-key", k.saltHex)}, []string{"my-key"}},
		{"digest of another case", map[string]string{"KeyDigest": phasecrypto.Digest("MY-KEY", k.saltHex)}, nil},
		{"tags", map[string]string{"tags": "payments,database"}, []string{"STRIPE_KEY", "DATABASE_URL", "PAYMENTS_WEBHOOK_SECRET"}},
		{"tags and path", map[string]string{"tags": "payments", "Path": "/"}, []string{"STRIPE_KEY"}},
	} {
		got, _ := c.read(k, tc.hdr)
		if d := cmp.Diff(tc.want, keysOf(got)); d != "" {
			t.Errorf("%s: keys (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestDynamicSecretsAndLeases(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", ServiceV2))
	k := c.keys("shop", "Staging")
	countDynamic := func(ws []wireSecret) (n, leased int) {
		for _, w := range ws {
			if w.Type == "dynamic" {
				n++
				if w.Lease != nil {
					leased++
				}
			}
		}
		return
	}
	_, ws := c.read(k, nil)
	if n, _ := countDynamic(ws); n != 0 {
		t.Errorf("dynamic secrets without the dynamic header")
	}
	_, ws = c.read(k, map[string]string{"dynamic": "true"})
	if n, l := countDynamic(ws); n != 1 || l != 0 {
		t.Errorf("dynamic without lease: %d dynamic, %d leased", n, l)
	}
	c.read(k, map[string]string{"dynamic": "true", "lease": "false"})
	if s.LeasesCreated() != 0 {
		t.Fatalf("a lease was minted without being asked for")
	}
	_, ws = c.read(k, map[string]string{"dynamic": "true", "lease": "true", "lease-ttl": "60"})
	if n, l := countDynamic(ws); n != 1 || l != 1 || s.LeasesCreated() != 1 {
		t.Fatalf("dynamic with lease: %d dynamic, %d leased, %d leases", n, l, s.LeasesCreated())
	}
	for _, w := range ws {
		if w.Type != "dynamic" {
			continue
		}
		got := map[string]string{}
		for _, cr := range w.Lease.Credentials {
			key, err := phasecrypto.Decrypt(cr.Key, k.sk, k.pk)
			if err != nil {
				t.Fatal(err)
			}
			val, err := phasecrypto.Decrypt(cr.Value, k.sk, k.pk)
			if err != nil {
				t.Fatal(err)
			}
			got[string(key)] = string(val)
		}
		want := map[string]string{"AWS_ACCESS_KEY_ID": "AKIADEMO-1", "AWS_SECRET_ACCESS_KEY": "demo-secret-1"}
		if len(got) != len(want) || got["AWS_ACCESS_KEY_ID"] != want["AWS_ACCESS_KEY_ID"] || got["AWS_SECRET_ACCESS_KEY"] != want["AWS_SECRET_ACCESS_KEY"] {
			t.Errorf("lease credentials: got %d keys", len(got))
		}
	}
	st, _, _ := c.do("GET", "/service/secrets/", map[string]string{"Environment": k.id, "dynamic": "true", "lease": "true", "lease_ttl": "soon"}, nil)
	if st != 400 {
		t.Errorf("non-integer lease_ttl: status %d, want 400", st)
	}
}

func TestErrorShapes(t *testing.T) {
	f := DemoFixture()
	f.Apps = append(f.Apps, App{Name: "other", Envs: []Env{{Name: "Development"}, {Name: "Production"}}})
	f.Accounts = []Account{
		{Name: "shop-v1", Kind: ServiceV1, App: "shop"},
		{Name: "sa-dev", Kind: ServiceV2, Grants: []Grant{{"shop", "Development"}}},
		{Name: "user-dev", Kind: User, Grants: []Grant{{"shop", "Development"}, {"other", "Development"}}},
		{Name: "gone", Kind: ServiceV2, Expired: true},
	}
	s := New(f)
	defer s.Close()
	tok := func(name string) string {
		v, err := s.TokenFor(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	bearer := func(name string) string {
		pt, err := phasecrypto.ParseToken(tok(name))
		if err != nil {
			t.Fatal(err)
		}
		return pt.AuthorizationHeader()
	}
	prod, otherProd := s.EnvID("shop", "Production"), s.EnvID("other", "Production")
	const tokens, secrets = "/service/secrets/tokens/", "/service/secrets/"
	for _, tc := range []struct {
		name, method, path, auth, env string
		status                        int
		msg                           string
	}{
		{"tokens without auth", "GET", tokens, "", "", 500, "Internal server error."},
		{"tokens garbage auth", "GET", tokens, "Bearer", "", 403, "Token expired or deleted"},
		{"tokens unknown type", "GET", tokens, "Bearer Robot abc", "", 403, "Token expired or deleted"},
		{"tokens unknown token", "GET", tokens, "Bearer Service " + strings.Repeat("ab", 32), "", 403, "Token expired or deleted"},
		{"tokens wrong type for token", "GET", tokens, strings.Replace(bearer("sa-dev"), "ServiceAccount", "Service", 1), "", 403, "Token expired or deleted"},
		{"tokens expired account", "GET", tokens, bearer("gone"), "", 403, "Token expired or deleted"},
		{"secrets without auth", "GET", secrets, "", prod, 401, "Authentication credentials were not provided."},
		{"secrets malformed", "GET", secrets, "Token abc", prod, 401, "Invalid token"},
		{"secrets unknown type", "GET", secrets, "Bearer Robot abc", prod, 401, "Invalid token"},
		{"secrets unknown token", "GET", secrets, "Bearer User " + strings.Repeat("cd", 32), prod, 401, "Token expired or deleted"},
		{"secrets expired", "GET", secrets, bearer("gone"), prod, 401, "Token expired or deleted"},
		{"unsupported method", "PATCH", secrets, bearer("shop-v1"), prod, 403, "Unsupported HTTP method: PATCH"},
		{"v1 without env", "GET", secrets, bearer("shop-v1"), "", 401, "Service tokens require an environment context"},
		{"sa without env", "GET", secrets, bearer("sa-dev"), "", 403, "Environment context required. Supply `app_id` and `env` as query parameters."},
		{"unknown env", "GET", secrets, bearer("shop-v1"), "00000000-0000-4000-8000-000000000000", 401, "Environment not found"},
		{"v1 other app", "GET", secrets, bearer("shop-v1"), otherProd, 401, "Service token cannot access this environment"},
		{"sa not granted", "GET", secrets, bearer("sa-dev"), prod, 401, "Service account cannot access this environment"},
		{"user not granted", "GET", secrets, bearer("user-dev"), prod, 403, "User cannot access this environment"},
		{"v1 ok", "GET", secrets, bearer("shop-v1"), prod, 200, ""},
		{"no /service prefix", "GET", "/secrets/", bearer("shop-v1"), prod, 200, ""},
		{"unknown path", "GET", "/service/nope/", bearer("shop-v1"), prod, 404, "Not found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL()+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.env != "" {
				req.Header.Set("Environment", tc.env)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.msg == "" {
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(b, &e); err != nil || e.Error != tc.msg {
				t.Errorf("error %q, want %q", e.Error, tc.msg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (tc.status == 401) != (got == "Bearer") {
				t.Errorf("WWW-Authenticate %q on %d", got, tc.status)
			}
		})
	}
}

func TestWrites(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", User))
	k := c.keys("shop", "Staging")
	item := func(key, value, path string) map[string]any {
		return map[string]any{"key": c.encrypt(k, key), "keyDigest": phasecrypto.Digest(key, k.saltHex),
			"value": c.encrypt(k, value), "comment": "", "path": path, "tags": []string{" ops ", ""}}
	}
	post := func(method string, body any) (int, string) {
		b, _ := json.Marshal(body)
		// Content-Type as node sends it: the body is JSON anyway.
		st, _, rb := c.do(method, "/service/secrets/", map[string]string{"Environment": k.id,
			"Content-Type": "application/x-www-form-urlencoded"}, b)
		var e struct{ Error string }
		_ = json.Unmarshal(rb, &e)
		return st, e.Error
	}
	if st, msg := post("POST", map[string]any{"secrets": []any{item("NEW_ONE", "v 1 $x", "/"), item("NEW_ONE", "dup in one request", "/api/")}}); st != 200 {
		t.Fatalf("create: %d %s", st, msg)
	}
	for _, tc := range []struct {
		name   string
		raw    string
		body   any
		status int
		msg    string
	}{
		{"duplicate", "", map[string]any{"secrets": []any{item("NEW_ONE", "x", "")}}, 409, "Duplicate secret found"},
		{"duplicate in folder", "", map[string]any{"secrets": []any{item("NEW_ONE", "x", "api")}}, 409, "Duplicate secret found"},
		{"empty body", " ", nil, 400, "Request body is empty"},
		{"invalid json", "{", nil, 400, "Invalid JSON in request body"},
		{"not an object", "[1]", nil, 400, "Request body must be a JSON object"},
		{"bad ciphertext", "", map[string]any{"secrets": []any{map[string]any{"key": "plain", "keyDigest": "x", "value": "", "comment": ""}}}, 400, "Invalid ciphertext format"},
		{"missing comment", "", map[string]any{"secrets": []any{map[string]any{"key": "", "keyDigest": "x", "value": ""}}}, 500, "Internal server error."},
		{"long tag", "", map[string]any{"secrets": []any{map[string]any{"key": "", "keyDigest": "y", "value": "", "comment": "", "tags": []string{strings.Repeat("t", 65)}}}}, 400, "Tag names must be at most 64 characters"},
	} {
		var st int
		var msg string
		if tc.raw != "" {
			rst, _, rb := c.do("POST", "/service/secrets/", map[string]string{"Environment": k.id}, []byte(tc.raw))
			var e struct{ Error string }
			_ = json.Unmarshal(rb, &e)
			st, msg = rst, e.Error
		} else {
			st, msg = post("POST", tc.body)
		}
		if st != tc.status || msg != tc.msg {
			t.Errorf("%s: %d %q, want %d %q", tc.name, st, msg, tc.status, tc.msg)
		}
	}
	plainByKey := func() map[string]PlainSecret {
		all, err := s.Secrets("shop", "Staging")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]PlainSecret{}
		for _, p := range all {
			m[p.Path+p.Key] = p
		}
		return m
	}
	m := plainByKey()
	got := m["/NEW_ONE"]
	if got.Value != "v 1 $x" || got.Version != 1 || !cmp.Equal(got.Tags, []string{"ops"}) || m["/apiNEW_ONE"].Value != "dup in one request" {
		t.Fatalf("stored: value %d bytes, version %d, tags %v", len(got.Value), got.Version, got.Tags)
	}
	if st, msg := post("PUT", map[string]any{"secrets": []any{map[string]any{"id": got.ID, "value": c.encrypt(k, "v2"),
		"override": map[string]any{"value": c.encrypt(k, "mine"), "isActive": true}}}}); st != 200 {
		t.Fatalf("update: %d %s", st, msg)
	}
	m = plainByKey()
	if u := m["/NEW_ONE"]; u.Value != "v2" || u.Version != 2 || !cmp.Equal(u.Tags, []string{"ops"}) || u.Override == nil || u.Override.Value != "mine" {
		t.Errorf("after update: %d bytes, version %d, tags %v, override %v", len(u.Value), u.Version, u.Tags, u.Override != nil)
	}
	// The override is served to this user.
	read, _ := c.read(k, map[string]string{"Path": "/"})
	for _, p := range read {
		if p.Key == "NEW_ONE" && (!p.Overridden || p.Value != "mine") {
			t.Errorf("override not served")
		}
	}
	if st, msg := post("PUT", map[string]any{"secrets": []any{map[string]any{"id": "nope"}}}); st != 404 {
		t.Errorf("update unknown id: %d %s", st, msg)
	}
	if st, msg := post("DELETE", map[string]any{"secrets": []string{got.ID, "unknown"}}); st != 200 {
		t.Fatalf("delete: %d %s", st, msg)
	}
	if _, ok := plainByKey()["/NEW_ONE"]; ok {
		t.Errorf("deleted secret still listed")
	}
	// A deleted secret no longer blocks its digest.
	if st, msg := post("POST", map[string]any{"secrets": []any{item("NEW_ONE", "again", "/")}}); st != 200 {
		t.Errorf("re-create after delete: %d %s", st, msg)
	}
	cnt := s.Requests()
	if cnt.SecretsPost < 2 || cnt.SecretsPut != 2 || cnt.SecretsDelete != 1 {
		t.Errorf("counters %+v", cnt)
	}
}

func TestFaults(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", ServiceV1))
	k := c.keys("shop", "Production")
	get := func() (*http.Response, []byte, error) {
		req, _ := http.NewRequest("GET", s.URL()+"/service/secrets/", nil)
		req.Header.Set("Authorization", c.tok.AuthorizationHeader())
		req.Header.Set("Environment", k.id)
		resp, err := s.Client().Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	t.Run("first N fail", func(t *testing.T) {
		s.FailFirst(2, 503)
		for i, want := range []int{503, 503, 200} {
			resp, _, err := get()
			if err != nil || resp.StatusCode != want {
				t.Fatalf("request %d: %v, want %d", i, err, want)
			}
		}
	})
	t.Run("429 with Retry-After", func(t *testing.T) {
		date := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
		s.TooManyRequests(1, "3")
		s.TooManyRequests(1, date)
		s.TooManyRequests(1, "")
		for _, want := range []string{"3", date, ""} {
			resp, _, err := get()
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != want {
				t.Fatalf("got %v %v, want 429 Retry-After %q", err, resp.Header.Get("Retry-After"), want)
			}
		}
	})
	t.Run("endpoint filter", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultStatus, Endpoint: EndpointTokens, Count: 1, Status: 502})
		if resp, _, err := get(); err != nil || resp.StatusCode != 200 {
			t.Fatalf("secrets hit by a tokens fault")
		}
		st, _, _ := c.do("GET", "/service/secrets/tokens/", nil, nil)
		if st != 502 {
			t.Fatalf("tokens: %d", st)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		s.SetRateLimit(60, 2)
		defer s.SetRateLimit(0, 0)
		var codes []int
		var ra string
		for i := 0; i < 3; i++ {
			resp, _, err := get()
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, resp.StatusCode)
			ra = resp.Header.Get("Retry-After")
		}
		// The bucket refills one request a second: a slow machine may
		// refill one between requests, never two.
		if codes[0] != 200 || codes[2] == 429 && ra != "1" {
			t.Fatalf("codes %v, Retry-After %q", codes, ra)
		}
		if codes[2] == 200 && codes[1] == 200 {
			if resp, _, _ := get(); resp.StatusCode != 429 {
				t.Skip("machine too slow to exhaust the bucket")
			}
		}
	})
	t.Run("tamper", func(t *testing.T) {
		if err := s.TamperSecret("shop", "Production", "STRIPE_KEY"); err != nil {
			t.Fatal(err)
		}
		_, b, err := get()
		if err != nil {
			t.Fatal(err)
		}
		var ws []wireSecret
		if err := json.Unmarshal(b, &ws); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, w := range ws {
			if !strings.HasPrefix(w.Value, "ph:v1:") || len(strings.Split(w.Value, ":")) != 4 {
				t.Errorf("tampered ciphertext lost its format")
			}
			if _, err := phasecrypto.Decrypt(w.Value, k.sk, k.pk); err != nil {
				bad++
			}
		}
		if bad != 1 {
			t.Errorf("%d values fail to decrypt, want 1", bad)
		}
		if err := s.TamperSecret("shop", "Production", "NOPE"); !errors.Is(err, ErrNotFound) {
			t.Errorf("tamper unknown: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultTruncate, Count: 1})
		resp, b, err := get()
		if err != nil || resp.StatusCode != 200 || json.Valid(b) {
			t.Fatalf("want a 200 with invalid JSON, got %v", err)
		}
	})
	t.Run("reset mid-body", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultReset, Count: 1})
		if _, _, err := get(); err == nil {
			t.Fatalf("no error from a reset body")
		}
		if resp, _, err := get(); err != nil || resp.StatusCode != 200 {
			t.Fatalf("server did not recover: %v", err)
		}
	})
	t.Run("wrong content", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultWrongContentType, Count: 1})
		s.Inject(Fault{Kind: FaultGarbageJSON, Count: 1})
		s.Inject(Fault{Kind: FaultWrongShape, Count: 1})
		for _, wantCT := range []string{"text/html; charset=utf-8", "application/json", "application/json"} {
			resp, b, err := get()
			if err != nil || resp.Header.Get("Content-Type") != wantCT {
				t.Fatalf("content type %q, want %q", resp.Header.Get("Content-Type"), wantCT)
			}
			var ws []wireSecret
			if json.Unmarshal(b, &ws) == nil {
				t.Errorf("%s: body decodes as a secrets list", wantCT)
			}
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultSlowHeaders, Count: 1, Delay: time.Hour})
		hc := s.Client()
		hc.Timeout = 100 * time.Millisecond
		req, _ := http.NewRequest("GET", s.URL()+"/service/secrets/tokens/", nil)
		req.Header.Set("Authorization", c.tok.AuthorizationHeader())
		if _, err := hc.Do(req); err == nil {
			t.Fatalf("no timeout")
		}
	})
	t.Run("slow body", func(t *testing.T) {
		s.Inject(Fault{Kind: FaultSlowBody, Count: 1, Delay: time.Hour})
		hc := s.Client()
		req, _ := http.NewRequest("GET", s.URL()+"/service/secrets/tokens/", nil)
		req.Header.Set("Authorization", c.tok.AuthorizationHeader())
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("headers should arrive at once: %v", err)
		}
		resp.Body.Close() // gives up on the rest; the handler must notice
	})
	t.Run("latency", func(t *testing.T) {
		s.SetLatency(time.Millisecond, time.Millisecond)
		defer s.SetLatency(0, 0)
		got, _ := c.read(k, map[string]string{"Path": "/backend"})
		if len(got) != 1 {
			t.Fatalf("got %d secrets", len(got))
		}
	})
	t.Run("expired token", func(t *testing.T) {
		tok, err := s.MintToken("shop", ServiceV1, time.Nanosecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		c2 := newClient(t, s, tok)
		if st, _, _ := c2.do("GET", "/service/secrets/tokens/", nil, nil); st != 403 {
			t.Errorf("expired minted token: %d", st)
		}
		fresh, _ := s.MintToken("shop", ServiceV1, 0)
		c3 := newClient(t, s, fresh)
		c3.keys("shop", "Production")
		s.ExpireToken(fresh)
		if st, _, _ := c3.do("GET", "/service/secrets/tokens/", nil, nil); st != 403 {
			t.Errorf("expired token: %d", st)
		}
	})
}

func TestCountersAndLog(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	c := newClient(t, s, s.Token("shop", ServiceV2))
	k := c.keys("shop", "Production")
	c.read(k, nil)
	c.read(k, nil)
	c.do("PATCH", "/service/secrets/", map[string]string{"Environment": k.id}, nil)
	s.FailFirst(1, 500)
	c.do("GET", "/secrets/tokens/", nil, nil)
	want := Counts{Total: 5, Tokens: 2, SecretsGet: 2, Other: 1, Faulted: 1}
	if d := cmp.Diff(want, s.Requests()); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
	log := s.Log()
	if len(log) != 5 || log[1].Endpoint != EndpointSecrets {
		t.Fatalf("log has %d entries", len(log))
	}
	if a := log[0].Header.Get("Authorization"); a != "Bearer ServiceAccount …" {
		t.Errorf("log keeps the token: %q", a)
	}
	if s.Connections() < 1 {
		t.Errorf("no connections counted")
	}
	s.ResetCounts()
	if s.Requests() != (Counts{}) {
		t.Errorf("reset")
	}
}

func TestDeterministic(t *testing.T) {
	body := func() (string, []byte, []byte) {
		s := New(DemoFixture(), WithSeed(42))
		defer s.Close()
		c := newClient(t, s, s.Token("shop", User))
		_, _, tb := c.do("GET", "/service/secrets/tokens/", nil, nil)
		_, _, sb := c.do("GET", "/service/secrets/", map[string]string{"Environment": s.EnvID("shop", "Production")}, nil)
		return s.Token("shop", User), tb, sb
	}
	t1, tb1, sb1 := body()
	t2, tb2, sb2 := body()
	if t1 != t2 || !bytes.Equal(tb1, tb2) || !bytes.Equal(sb1, sb2) {
		t.Errorf("two seeded emulators differ")
	}
	s := New(DemoFixture(), WithSeed(43))
	defer s.Close()
	if s.Token("shop", User) == t1 {
		t.Errorf("seed ignored")
	}
}

func TestHandleExtraRoute(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	s.Handle("POST /service/public/identities/external/v1/aws/iam/auth/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	resp, err := s.Client().Post(s.URL()+"/service/public/identities/external/v1/aws/iam/auth/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"ok":true}` || s.Requests().Other != 1 {
		t.Errorf("extra route: %d %s", resp.StatusCode, b)
	}
}

func TestStartAndLarge(t *testing.T) {
	f := Large(200)
	s, err := Start("127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %s", s.URL())
	}
	c := newClient(t, s, s.Token("large", ServiceV1))
	got, _ := c.read(c.keys("large", "Production"), nil)
	compareSecrets(t, got, fixtureSecrets(f, "large", "Production"))
	if _, err := Start(strings.TrimPrefix(s.URL(), "http://"), f); err == nil {
		t.Errorf("second listener on one port")
	}
}

func TestInvalidFixtures(t *testing.T) {
	for _, f := range []Fixture{
		{Apps: []App{{}}},
		{Apps: []App{{Name: "a"}, {Name: "A"}}},
		{Apps: []App{{Name: "a", Envs: []Env{{Name: "x", Seed: "zz"}}}}},
		{Apps: []App{{Name: "a", Envs: []Env{{Name: "x", Secrets: []Secret{{Value: "v"}}}}}}},
		{Apps: []App{{Name: "a"}}, Accounts: []Account{{Name: "n", Kind: "robot"}}},
		{Apps: []App{{Name: "a"}}, Accounts: []Account{{Name: "n", Kind: ServiceV1, App: "b"}}},
		{Apps: []App{{Name: "a", Envs: []Env{{Name: "x"}}}}, Accounts: []Account{{Name: "n", Kind: User, Grants: []Grant{{"a", "y"}}}}},
	} {
		if _, err := Start("127.0.0.1:0", f); err == nil {
			t.Errorf("fixture %+v accepted", f)
		}
	}
}

func TestAddSecretAndValues(t *testing.T) {
	s := New(DemoFixture())
	defer s.Close()
	if err := s.AddSecret("shop", "Development", Secret{Key: "LATE", Value: "added", Path: "/x/"}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Values("shop", "Development", "/x")
	if err != nil || len(v) != 1 || v["LATE"] != "added" {
		t.Errorf("values: %d entries, err %v", len(v), err)
	}
	if s.EnvID("shop", "nope") != "" || s.AppID("nope") != "" {
		t.Errorf("unknown names give ids")
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"", "/", "//", "a", "/a/", "a//b/", "/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normalizePath(p)
		if !strings.HasPrefix(n, "/") || strings.Contains(n, "//") || (n != "/" && strings.HasSuffix(n, "/")) {
			t.Fatalf("normalizePath(%q) = %q", p, n)
		}
		if normalizePath(n) != n {
			t.Fatalf("not idempotent on %q", p)
		}
	})
}

// FuzzWriteBody: no body a client sends makes the emulator panic or
// answer anything but a documented status.
func FuzzWriteBody(f *testing.F) {
	s := New(DemoFixture(), WithSeed(1))
	f.Cleanup(s.Close)
	s.mu.Lock()
	acct := s.accounts[len(s.accounts)-1]
	e := s.apps[0].envs[0]
	s.mu.Unlock()
	for _, b := range []string{"", "{", "[]", `{"secrets":[]}`, `{"secrets":[{"key":"","keyDigest":"","value":"","comment":""}]}`,
		`{"secrets":[{"id":"x","override":{"isActive":true}}]}`, `{"secrets":["a"]}`, `{"secrets":[{"tags":[1]}]}`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := len(e.secrets)
		for _, r := range []response{s.createSecrets(body, acct, e), s.updateSecrets(body, acct, e), s.deleteSecrets(body, e)} {
			switch r.status {
			case 200, 400, 404, 409, 500:
			default:
				t.Fatalf("status %d", r.status)
			}
		}
		e.secrets = e.secrets[:n]
	})
}

func TestTLS(t *testing.T) {
	s := New(DemoFixture(), WithTLS())
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s", s.URL())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatalf("CACertPEM is not a PEM certificate")
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get(s.URL() + "/service/secrets/tokens/")
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 { // no Authorization header
		t.Errorf("status %d", resp.StatusCode)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}).Get(s.URL()); !errors.As(err, &unknown) {
		t.Errorf("without the CA: %v", err)
	}
	plain := New(DemoFixture())
	defer plain.Close()
	if plain.CACertPEM() != nil {
		t.Errorf("CA for a plain HTTP server")
	}
}

// TestConcurrentClients is for -race: readers, writers and fault setters at once.
func TestConcurrentClients(t *testing.T) {
	s := New(DemoFixture(), WithSeed(7))
	defer s.Close()
	c := newClient(t, s, s.Token("shop", User))
	k := c.keys("shop", "Staging")
	done := make(chan error, 16)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 5; i++ {
				req, _ := http.NewRequest("GET", s.URL()+"/service/secrets/", nil)
				req.Header.Set("Authorization", c.tok.AuthorizationHeader())
				req.Header.Set("Environment", k.id)
				req.Header.Set("dynamic", "true")
				req.Header.Set("lease", "true")
				resp, err := s.Client().Do(req)
				if err != nil {
					done <- err
					return
				}
				_, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		go func(g int) {
			key := "W" + strings.Repeat("X", g+1)
			body, _ := json.Marshal(map[string]any{"secrets": []any{map[string]any{
				"key": c.encrypt(k, key), "keyDigest": phasecrypto.Digest(key, k.saltHex),
				"value": c.encrypt(k, "v"), "comment": ""}}})
			req, _ := http.NewRequest("POST", s.URL()+"/service/secrets/", bytes.NewReader(body))
			req.Header.Set("Authorization", c.tok.AuthorizationHeader())
			req.Header.Set("Environment", k.id)
			resp, err := s.Client().Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			s.SetLatency(0, 0)
			_ = s.Requests()
			done <- err
		}(g)
	}
	for i := 0; i < 16; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := s.LeasesCreated(); n != 40 {
		t.Errorf("%d leases, want 40", n)
	}
	all, err := s.Secrets("shop", "Staging")
	if err != nil || len(all) != 10 {
		t.Errorf("%d secrets after 8 writes, err %v", len(all), err)
	}
}
