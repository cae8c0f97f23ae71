package awsiam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/awsiam/awstest"
	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

var wantSecrets = map[string]string{
	"DATABASE_URL": "postgres://app:p@ss w0rd@db.internal:5432/app",
	"API_KEY":      "sk_live_aws_iam_e2e",
	"MULTI_LINE":   "line 1\nline 2\n",
}

func emulator(t *testing.T) *phasetest.Server {
	t.Helper()
	var secrets []phasetest.Secret
	for k, v := range wantSecrets {
		secrets = append(secrets, phasetest.Secret{Key: k, Value: v})
	}
	s := phasetest.New(phasetest.Fixture{Apps: []phasetest.App{{
		Name: "shop",
		Envs: []phasetest.Env{{Name: "Production", Secrets: secrets}},
	}}})
	t.Cleanup(s.Close)
	return s
}

// principals are the fakes' identities as the emulated STS knows them.
func principals() []phasetest.AWSPrincipal {
	p := func(c awstest.Creds, arn string) phasetest.AWSPrincipal {
		return phasetest.AWSPrincipal{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, ARN: arn}
	}
	return []phasetest.AWSPrincipal{
		p(envCreds, "arn:aws:iam::123456789012:user/ci"),
		p(ecsCreds, "arn:aws:sts::123456789012:assumed-role/shop-task-role/8a5c7b8e"),
		p(fullCreds, "arn:aws:sts::123456789012:assumed-role/shop-pod-role/eks-shop-pod"),
		p(imdsCreds, "arn:aws:sts::123456789012:assumed-role/shop-instance-role/i-0123456789abcdef0"),
		p(webCreds, "arn:aws:sts::123456789012:assumed-role/fake-irsa-role/phase-shim-1"),
	}
}

var trustAll = []string{
	"arn:aws:iam::123456789012:user/ci",
	"arn:aws:sts::123456789012:assumed-role/shop-*-role/*",
	"arn:aws:sts::123456789012:assumed-role/fake-irsa-role/*",
}

// debugLog collects debug lines so a test can prove no token reached them.
type debugLog struct {
	mu    sync.Mutex
	lines []string
}

func (d *debugLog) debugf(f string, a ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, fmt.Sprintf(f, a...))
}

func (d *debugLog) check(t *testing.T, token string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lines {
		checkNoSecret(t, "debug line", l)
		if token != "" && strings.Contains(l, token) {
			t.Errorf("a debug line contains the minted token")
		}
	}
}

func compareSecrets(t *testing.T, got []fetch.Secret, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range got {
		seen[s.Key] = true
		w, ok := want[s.Key]
		switch {
		case !ok:
			t.Errorf("unexpected secret %s (%d bytes)", s.Key, len(s.Value))
		case w != s.Value:
			i := 0
			for i < len(w) && i < len(s.Value) && w[i] == s.Value[i] {
				i++
			}
			t.Errorf("%s: got %d bytes, want %d bytes, first difference at byte %d", s.Key, len(s.Value), len(w), i)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("missing secret %s", k)
		}
	}
}

// TestEndToEnd drives each credential provider against its loopback fake,
// logs in to the emulator, then reads the secrets with the minted token.
func TestEndToEnd(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	s := emulator(t)
	logins := s.EnableAWSIAM(phasetest.AWSIAM{App: "shop", Principals: principals(), TrustedPrincipals: trustAll})
	want := map[string]awstest.Creds{ProviderEnv: envCreds, ProviderWebIdentity: webCreds, ProviderECS: ecsCreds, ProviderFullURI: fullCreds, ProviderIMDS: imdsCreds}
	for _, p := range []string{ProviderEnv, ProviderWebIdentity, ProviderECS, ProviderFullURI, ProviderIMDS} {
		t.Run(p, func(t *testing.T) {
			var d debugLog
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tok, provider, err := Login(ctx, Options{
				ServiceAccountID: s.AccountID("shop", phasetest.ServiceV2),
				TTL:              2 * time.Minute,
				Host:             s.URL(),
				HTTPClient:       awstest.LoopbackClient(t),
				Getenv:           envMap(f.env(p)),
				Debugf:           d.debugf,
			})
			if err != nil {
				checkNoSecret(t, "error", err.Error())
				t.Fatalf("login: %v", err)
			}
			d.check(t, tok)
			if provider != p {
				t.Errorf("provider = %s, want %s", provider, p)
			}
			if tok == s.Token("shop", phasetest.ServiceV2) {
				t.Errorf("login returned the fixture's standing token, not a minted one")
			}
			akid, ttl, headers := logins.Last()
			if akid != want[p].AccessKeyID || ttl != 120 {
				t.Errorf("emulator saw access key %s ttl %d, want %s 120", akid, ttl, want[p].AccessKeyID)
			}
			wantHeaders := []string{"Authorization", "Content-Length", "Content-Type", "X-Amz-Date"}
			if want[p].SessionToken != "" {
				wantHeaders = append(wantHeaders, "X-Amz-Security-Token")
			}
			if d := cmp.Diff(wantHeaders, headers); d != "" {
				t.Errorf("signed request headers (-want +got):\n%s", d)
			}
			res, err := fetch.FetchPhase(ctx, fetch.PhaseOptions{Token: tok, Host: s.URL(), App: "shop", Env: "Production"})
			if err != nil {
				t.Fatalf("fetch with the minted token: %v", err)
			}
			compareSecrets(t, res.Secrets, wantSecrets)
		})
	}
	if ok, total := logins.Count(); ok != 5 || total != 5 {
		t.Errorf("logins ok %d of %d, want 5 of 5", ok, total)
	}
}

func TestLoginErrors(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	tests := []struct {
		name  string
		cfg   phasetest.AWSIAM
		opts  func(*Options)
		fault *phasetest.Fault
		class error
		want  []string
	}{
		{name: "signature expired", cfg: phasetest.AWSIAM{Now: func() time.Time { return time.Now().Add(2 * time.Minute) }},
			class: fetch.ErrAuth, want: []string{"401", "Signature expired", "clock"}},
		{name: "clock behind", cfg: phasetest.AWSIAM{Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }},
			class: fetch.ErrAuth, want: []string{"Signature expired"}},
		{name: "untrusted principal", cfg: phasetest.AWSIAM{TrustedPrincipals: []string{"arn:aws:sts::123456789012:assumed-role/other-role/*"}},
			class: fetch.ErrAuth, want: []string{"403", "Untrusted principal", "trusted principals"}},
		{name: "untrusted access key", cfg: phasetest.AWSIAM{TrustedAccessKeys: []string{"AKIAOTHER"}},
			class: fetch.ErrAuth, want: []string{"Untrusted principal"}},
		{name: "sts rejects signature", cfg: phasetest.AWSIAM{Principals: []phasetest.AWSPrincipal{{AccessKeyID: ecsCreds.AccessKeyID, SecretAccessKey: "not-the-key", SessionToken: ecsCreds.SessionToken}}},
			class: fetch.ErrAuth, want: []string{"AWS STS validation failed"}},
		{name: "endpoint mismatch", cfg: phasetest.AWSIAM{STSEndpoint: "https://sts.eu-west-1.amazonaws.com"},
			class: fetch.ErrConfig, want: []string{"400", "STS endpoint mismatch", "signed for https://sts.amazonaws.com", "expects https://sts.eu-west-1.amazonaws.com", "--aws-sts-endpoint"}},
		{name: "unknown service account", opts: func(o *Options) { o.ServiceAccountID = "00000000-0000-4000-8000-000000000000" },
			class: fetch.ErrConfig, want: []string{"404", "Service account not found"}},
		{name: "ttl above max", opts: func(o *Options) { o.TTL = 48 * time.Hour },
			class: fetch.ErrConfig, want: []string{"TTL"}},
		{name: "phase unavailable", fault: &phasetest.Fault{Kind: phasetest.FaultStatus, Status: 503},
			class: fetch.ErrUnavailable, want: []string{"503"}},
		{name: "garbage answer", fault: &phasetest.Fault{Kind: phasetest.FaultGarbageJSON},
			class: fetch.ErrProtocol, want: []string{"not the expected JSON"}},
		{name: "wrong shape", fault: &phasetest.Fault{Kind: phasetest.FaultWrongShape},
			class: fetch.ErrProtocol, want: []string{"no authentication.token"}},
		{name: "no service account id", opts: func(o *Options) { o.ServiceAccountID = "" },
			class: fetch.ErrConfig, want: []string{"service account id"}},
		{name: "bad sts endpoint", opts: func(o *Options) { o.STSEndpoint = "sts.amazonaws.com" },
			class: fetch.ErrConfig, want: []string{"not an http(s) URL"}},
		{name: "no credentials", opts: func(o *Options) { o.Getenv = envMap(nil) },
			class: fetch.ErrConfig, want: []string{"no aws credentials found"}},
		{name: "phase down", opts: func(o *Options) { o.Host = closedPort(t) },
			class: fetch.ErrUnavailable, want: []string{"phase aws iam login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := emulator(t)
			cfg := tt.cfg
			cfg.App = "shop"
			if cfg.Principals == nil {
				cfg.Principals = principals()
			}
			s.EnableAWSIAM(cfg)
			if tt.fault != nil {
				s.Inject(*tt.fault)
			}
			var d debugLog
			o := Options{
				ServiceAccountID: s.AccountID("shop", phasetest.ServiceV2),
				Host:             s.URL(),
				HTTPClient:       awstest.LoopbackClient(t),
				Getenv:           envMap(f.env(ProviderECS)),
				Debugf:           d.debugf,
			}
			if tt.opts != nil {
				tt.opts(&o)
			}
			tok, _, err := Login(context.Background(), o)
			if err == nil {
				t.Fatalf("no error (token of %d bytes)", len(tok))
			}
			if tok != "" {
				t.Errorf("a token came back with an error")
			}
			checkNoSecret(t, "error", err.Error())
			d.check(t, "")
			if !errors.Is(err, tt.class) {
				t.Errorf("err = %v, want class %v", err, tt.class)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestRegionalEndpoint(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	s := emulator(t)
	logins := s.EnableAWSIAM(phasetest.AWSIAM{App: "shop", STSEndpoint: "https://sts.eu-west-1.amazonaws.com", Principals: principals()})
	env := merge(f.env(ProviderECS), map[string]string{"AWS_REGION": "eu-west-1"})
	tok, _, err := Login(context.Background(), Options{
		ServiceAccountID: s.AccountID("shop", phasetest.ServiceV2),
		STSEndpoint:      "regional",
		Host:             s.URL() + "/",
		HTTPClient:       awstest.LoopbackClient(t),
		Getenv:           envMap(env),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !isServiceV2Token(tok) {
		t.Errorf("token is not pss_service:v2 (%d bytes)", len(tok))
	}
	if ok, _ := logins.Count(); ok != 1 {
		t.Errorf("logins = %d", ok)
	}
}

func TestSTSTarget(t *testing.T) {
	tests := []struct {
		endpoint string
		env      map[string]string
		url      string
		region   string
	}{
		{"", nil, "https://sts.amazonaws.com", "us-east-1"},
		{"", map[string]string{"AWS_REGION": "eu-west-1"}, "https://sts.amazonaws.com", "us-east-1"},
		{"https://sts.amazonaws.com/", nil, "https://sts.amazonaws.com/", "us-east-1"},
		{"https://sts.eu-west-1.amazonaws.com", map[string]string{"AWS_REGION": "us-east-1"}, "https://sts.eu-west-1.amazonaws.com", "eu-west-1"},
		{"https://sts-fips.us-gov-west-1.amazonaws.com", nil, "https://sts-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
		{"https://sts.cn-north-1.amazonaws.com.cn", nil, "https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1"},
		{"https://vpce-0abc-123.sts.ap-south-1.vpce.amazonaws.com", nil, "https://vpce-0abc-123.sts.ap-south-1.vpce.amazonaws.com", "ap-south-1"},
		{"https://sts.internal.example", map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}, "https://sts.internal.example", "ap-south-1"},
		{"https://sts.internal.example", nil, "https://sts.internal.example", "us-east-1"},
		{"regional", map[string]string{"AWS_REGION": "us-west-2"}, "https://sts.us-west-2.amazonaws.com", "us-west-2"},
		{"regional", map[string]string{"AWS_DEFAULT_REGION": "cn-northwest-1"}, "https://sts.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1"},
	}
	for _, tt := range tests {
		u, region, err := stsTarget(tt.endpoint, envMap(tt.env))
		if err != nil {
			t.Errorf("%q: %v", tt.endpoint, err)
			continue
		}
		if u.String() != tt.url || region != tt.region {
			t.Errorf("%q %v: got %s %s, want %s %s", tt.endpoint, tt.env, u, region, tt.url, tt.region)
		}
	}
	for _, bad := range []struct {
		endpoint string
		env      map[string]string
	}{
		{"regional", nil},
		{"sts.amazonaws.com", nil},
		{"ftp://sts.amazonaws.com", nil},
		{"https://user:pw@sts.amazonaws.com", nil},
		{"", map[string]string{"AWS_REGION": "us-east-1.evil.com/"}},
	} {
		if _, _, err := stsTarget(bad.endpoint, envMap(bad.env)); !errors.Is(err, fetch.ErrConfig) {
			t.Errorf("%q %v: err = %v, want ErrConfig", bad.endpoint, bad.env, err)
		}
	}
}

// TestAuthRequestShape checks the JSON body against the spec's field names
// and the decoded signed request against the derived vector.
func TestAuthRequestShape(t *testing.T) {
	f := loadVectors(t)
	now, _ := time.Parse(time.RFC3339, f.Time)
	u, _ := url.Parse("https://sts.amazonaws.com/")
	body, err := authRequestBody(" 3f0c-sa ", 300, Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey}, u, "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	aws := got["awsIam"].(map[string]any)
	dec := func(k string) string {
		b, err := base64.StdEncoding.DecodeString(aws[k].(string))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return string(b)
	}
	var headers map[string]string
	if err := json.Unmarshal([]byte(dec("httpRequestHeaders")), &headers); err != nil {
		t.Fatal(err)
	}
	wantHeaders := map[string]string{
		"Content-Type":   "application/x-www-form-urlencoded; charset=utf-8",
		"Content-Length": "43",
		"X-Amz-Date":     "20150830T123600Z",
		"Authorization":  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=6fb20d31f734d876c5682fdd2678d194cf68b862755f83b7ba1373c0874be25c",
	}
	if d := cmp.Diff(wantHeaders, headers); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"type": "service", "id": "3f0c-sa"}, got["account"]); d != "" {
		t.Errorf("account (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"ttl": 300.0}, got["tokenRequest"]); d != "" {
		t.Errorf("tokenRequest (-want +got):\n%s", d)
	}
	if aws["httpRequestMethod"] != "POST" || dec("httpRequestUrl") != "https://sts.amazonaws.com/" || dec("httpRequestBody") != getCallerIdentityBody {
		t.Errorf("awsIam method/url/body wrong: %v %q %q", aws["httpRequestMethod"], dec("httpRequestUrl"), dec("httpRequestBody"))
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if d := cmp.Diff([]string{"account", "awsIam", "tokenRequest"}, keys); d != "" {
		t.Errorf("top-level keys (-want +got):\n%s", d)
	}
	// Without a TTL the tokenRequest object is left out.
	body, _ = authRequestBody("sa", 0, Credentials{AccessKeyID: "A", SecretAccessKey: "S"}, u, "us-east-1", now)
	if strings.Contains(string(body), "tokenRequest") {
		t.Errorf("tokenRequest sent without a ttl")
	}
}

func TestParseAuthResponse(t *testing.T) {
	good := "pss_service:v2:" + strings.Repeat("a", 64) + ":" + strings.Repeat("b", 64) + ":" + strings.Repeat("c", 64) + ":" + strings.Repeat("d", 64)
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"authentication":{"tokenType":"ServiceAccount","token":"` + good + `","TTL":60}}`, true},
		{`{"authentication":{"token":"pss_service:v1:` + strings.Repeat("a", 64) + `"}}`, false},
		{`{"authentication":{}}`, false},
		{`[]`, false},
		{``, false},
	}
	for _, tt := range tests {
		tok, _, err := parseAuthResponse([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%.40q: err = %v", tt.body, err)
		}
		if err != nil && (strings.Contains(err.Error(), strings.Repeat("a", 64)) || tok != "") {
			t.Errorf("error path leaks the token")
		}
	}
}

func FuzzParseAuthResponse(f *testing.F) {
	f.Add([]byte(`{"authentication":{"tokenType":"ServiceAccount","token":"x","TTL":60}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, _, err := parseAuthResponse(body)
		if err == nil && !isServiceV2Token(tok) {
			t.Fatal("accepted a token that is not pss_service:v2")
		}
		if err != nil && tok != "" {
			t.Fatal("token returned with an error")
		}
	})
}

// TestLoginUsesOwnClientSafely checks the default Phase client refuses to
// follow a redirect (the signed request must not travel to another host).
func TestDefaultClientNoRedirect(t *testing.T) {
	c := newClient(time.Second, time.Second, false)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	if err := c.CheckRedirect(req, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v", err)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"  plain  ", 10, "plain"},
		{"a\nb\x1b[31mc", 20, "a b [31mc"},
		{"héllo wörld", 5, "héllo…"},
	}
	for _, tt := range tests {
		if got := printable(tt.in, tt.n); got != tt.want {
			t.Errorf("printable(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	if got := serverMessage([]byte(`{"error":"Untrusted principal"}`), map[string]any{"error": "Untrusted principal"}); got != "Untrusted principal" {
		t.Errorf("serverMessage = %q", got)
	}
	if got := serverMessage([]byte("<html>bad gateway</html>"), nil); got != "<html>bad gateway</html>" {
		t.Errorf("serverMessage of a non-JSON body = %q", got)
	}
}

func TestHandWrittenChecks(t *testing.T) {
	hex64 := strings.Repeat("aF09", 16)
	for tok, want := range map[string]bool{
		"pss_service:v2:" + hex64 + ":" + hex64 + ":" + hex64 + ":" + hex64:           true,
		"pss_service:v2:" + hex64 + ":" + hex64 + ":" + hex64:                         false,
		"pss_service:v1:" + hex64 + ":" + hex64 + ":" + hex64 + ":" + hex64:           false,
		"pss_service:v2:" + hex64 + ":" + hex64 + ":" + hex64 + ":" + hex64 + ":":     false,
		"pss_service:v2:" + hex64 + ":" + hex64 + ":" + hex64 + ":" + hex64[1:] + "g": false,
	} {
		if got := isServiceV2Token(tok); got != want {
			t.Errorf("isServiceV2Token(%d-byte string) = %t, want %t", len(tok), got, want)
		}
	}
	for r, want := range map[string]bool{"us-east-1": true, "cn-north-1": true, "us-gov-west-1": true, "useast1": false, "us--east": false, "-us": false, "us-": false, "US-EAST-1": false, "us-east-1.evil": false} {
		if got := isRegion(r); got != want {
			t.Errorf("isRegion(%q) = %t, want %t", r, got, want)
		}
	}
	for n, want := range map[string]bool{"a": false, "ab": true, "my_session+=,.@-1": true, "has space": false, strings.Repeat("x", 64): true, strings.Repeat("x", 65): false, "é1": false} {
		if got := isSessionName(n); got != want {
			t.Errorf("isSessionName(%q) = %t, want %t", n, got, want)
		}
	}
	for host, want := range map[string]string{
		"sts.eu-west-1.amazonaws.com": "eu-west-1", "sts-fips.us-east-2.amazonaws.com": "us-east-2",
		"sts.cn-north-1.amazonaws.com.cn": "cn-north-1", "vpce-1.sts.ap-south-1.vpce.amazonaws.com": "ap-south-1",
		"sts.amazonaws.com": "", "s3.eu-west-1.amazonaws.com": "", "sts.eu-west-1.amazonaws.com.evil": "", "xsts.eu-west-1.amazonaws.com": "",
	} {
		got, ok := stsHostRegion(host)
		if got != want || ok != (want != "") {
			t.Errorf("stsHostRegion(%q) = %q %t, want %q", host, got, ok, want)
		}
	}
}
