package awsiam

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/awsiam/awstest"
)

// Fake credentials per provider: distinct access key ids let tests (and the
// emulator's trust check) tell which provider signed.
var (
	envCreds  = awstest.Creds{AccessKeyID: "AKIAENVFAKE000000001", SecretAccessKey: "env-secret-key-value-0001"}
	ecsCreds  = awstest.Creds{AccessKeyID: "ASIAECSFAKE000000002", SecretAccessKey: "ecs-secret-key-value-0002", SessionToken: "ecs-session-token-0002"}
	fullCreds = awstest.Creds{AccessKeyID: "ASIAPODFAKE000000003", SecretAccessKey: "pod-secret-key-value-0003", SessionToken: "pod-session-token-0003"}
	imdsCreds = awstest.Creds{AccessKeyID: "ASIAEC2FAKE000000004", SecretAccessKey: "ec2-secret-key-value-0004", SessionToken: "ec2-session-token-0004"}
	webCreds  = awstest.Creds{AccessKeyID: "ASIAWEBFAKE000000005", SecretAccessKey: "web-secret-key-value-0005", SessionToken: "web-session-token-0005"}
)

const (
	fakeJWT      = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2lnbmF0dXJl"
	fakeRoleArn  = "arn:aws:iam::123456789012:role/fake-irsa-role"
	fakeECSPath  = "/v2/credentials/8a5c7b8e-0000-4000-8000-000000000001"
	fakePodToken = "pod-identity-authorization-token-value"
)

// allSecrets lists every secret the fakes hold, to prove none leaks into an
// error message.
func allSecrets() []string {
	var s []string
	for _, c := range []awstest.Creds{envCreds, ecsCreds, fullCreds, imdsCreds, webCreds} {
		s = append(s, c.SecretAccessKey)
		if c.SessionToken != "" {
			s = append(s, c.SessionToken)
		}
	}
	return append(s, fakeJWT, fakePodToken, "imds-session-1", "imds-session-2")
}

func checkNoSecret(t *testing.T, what string, s string) {
	t.Helper()
	for _, sec := range allSecrets() {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret (%d-byte value)", what, len(sec))
		}
	}
}

// loopbackOnly installs the dial guard and a resolver that never asks DNS,
// for the whole test.
func loopbackOnly(t *testing.T) {
	t.Helper()
	oldDial, oldLookup, oldECS, oldSTS := dialContext, lookupIP, ecsHost, webIdentitySTSOverride
	dialContext = awstest.LoopbackDial(t)
	lookupIP = func(_ context.Context, host string) ([]net.IPAddr, error) {
		return nil, fmt.Errorf("no DNS in tests (%s)", host)
	}
	// An unset ECS host would send a relative URI to the real agent address;
	// make it a closed loopback port unless the test starts a fake.
	ecsHost = "127.0.0.1:1"
	t.Cleanup(func() {
		dialContext, lookupIP, ecsHost, webIdentitySTSOverride = oldDial, oldLookup, oldECS, oldSTS
	})
}

// envMap returns a getenv over m. IMDS is disabled unless the test sets its
// own value, so no test can fall through to 169.254.169.254.
func envMap(m map[string]string) func(string) string {
	return func(k string) string {
		if k == "AWS_EC2_METADATA_DISABLED" {
			if v, ok := m[k]; ok {
				return v
			}
			if m["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == "" {
				return "true"
			}
		}
		return m[k]
	}
}

func newResolver(t *testing.T, env map[string]string) resolver {
	return resolver{
		getenv: envMap(env),
		debugf: func(f string, a ...any) { checkNoSecret(t, "debug line", fmt.Sprintf(f, a...)) },
		now:    time.Now,
	}
}

// sameCreds compares without printing secrets.
func sameCreds(t *testing.T, got Credentials, want awstest.Creds) {
	t.Helper()
	if got.AccessKeyID != want.AccessKeyID {
		t.Errorf("access key id = %s, want %s", got.AccessKeyID, want.AccessKeyID)
	}
	if got.SecretAccessKey != want.SecretAccessKey {
		t.Errorf("secret access key: got %d bytes, want %d bytes (values differ)", len(got.SecretAccessKey), len(want.SecretAccessKey))
	}
	if got.SessionToken != want.SessionToken {
		t.Errorf("session token: got %d bytes, want %d bytes (values differ)", len(got.SessionToken), len(want.SessionToken))
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakes starts one of each fake and returns an environment for each
// provider, keyed by provider name.
type fakeSet struct {
	ecs, full *awstest.Container
	imds      *awstest.IMDS
	sts       *awstest.STS
	tokenFile string
	jwtFile   string
}

func startFakes(t *testing.T) *fakeSet {
	t.Helper()
	f := &fakeSet{
		ecs:  awstest.NewContainer(t, fakeECSPath, "", ecsCreds),
		full: awstest.NewContainer(t, "/v1/credentials", fakePodToken, fullCreds),
		imds: awstest.NewIMDS(t, "fake-instance-role", imdsCreds),
		sts:  awstest.NewSTS(t, fakeRoleArn, fakeJWT, webCreds),
	}
	ecsHost = f.ecs.HostPort()
	f.tokenFile = writeFile(t, "pod-token", fakePodToken+"\n")
	f.jwtFile = writeFile(t, "jwt", fakeJWT+"\n")
	return f
}

func (f *fakeSet) env(provider string) map[string]string {
	switch provider {
	case ProviderEnv:
		return map[string]string{"AWS_ACCESS_KEY_ID": envCreds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": envCreds.SecretAccessKey}
	case ProviderWebIdentity:
		return map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": f.jwtFile, "AWS_ROLE_ARN": fakeRoleArn, "AWS_ENDPOINT_URL_STS": f.sts.URL}
	case ProviderECS:
		return map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": fakeECSPath}
	case ProviderFullURI:
		return map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": f.full.FullURI(), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": f.tokenFile}
	case ProviderIMDS:
		return map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": f.imds.URL}
	}
	panic(provider)
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestChainOrder(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	all := []string{ProviderEnv, ProviderWebIdentity, ProviderECS, ProviderFullURI, ProviderIMDS}
	want := map[string]awstest.Creds{ProviderEnv: envCreds, ProviderWebIdentity: webCreds, ProviderECS: ecsCreds, ProviderFullURI: fullCreds, ProviderIMDS: imdsCreds}
	// With providers i..end configured, provider i must win.
	for i, p := range all {
		t.Run(p, func(t *testing.T) {
			var envs []map[string]string
			for _, q := range all[i:] {
				envs = append(envs, f.env(q))
			}
			c, got, err := newResolver(t, merge(envs...)).resolveCredentials(context.Background())
			if err != nil {
				checkNoSecret(t, "error", err.Error())
				t.Fatalf("resolve: %v", err)
			}
			if got != p {
				t.Fatalf("provider = %s, want %s", got, p)
			}
			sameCreds(t, c, want[p])
		})
	}
}

func TestNoCredentials(t *testing.T) {
	loopbackOnly(t)
	closed := closedPort(t)
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"metadata disabled", map[string]string{"AWS_EC2_METADATA_DISABLED": "TRUE"},
			[]string{"AWS_ACCESS_KEY_ID unset", "AWS_WEB_IDENTITY_TOKEN_FILE unset", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI unset", "AWS_CONTAINER_CREDENTIALS_FULL_URI unset", "AWS_EC2_METADATA_DISABLED=true", "taskRoleArn"}},
		{"half env keys", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAHALF"},
			[]string{"AWS_SECRET_ACCESS_KEY unset", "AWS_EC2_METADATA_DISABLED=true"}},
		{"metadata unreachable", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closed},
			[]string{"EC2 instance metadata at " + closed, "no answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newResolver(t, tt.env).resolveCredentials(context.Background())
			if !errors.Is(err, fetch.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// closedPort returns an http URL on loopback where nothing listens.
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

func TestProviderErrors(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	badToken := writeFile(t, "bad-token", "line1\nline2\n")
	tests := []struct {
		name  string
		env   map[string]string
		setup func()
		class error
		want  string
	}{
		{"ecs relative without slash", map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "@evil.example/creds"}, nil, fetch.ErrConfig, "must start with"},
		{"ecs unknown path", map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/other"}, nil, fetch.ErrAuth, "404"},
		{"ecs server error", f.env(ProviderECS), func() { f.ecs.FailWith(500) }, fetch.ErrUnavailable, "answered 500"},
		{"full uri wrong token", merge(f.env(ProviderFullURI), map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}), nil, fetch.ErrAuth, "AccessDenied"},
		{"full uri token with newline", merge(f.env(ProviderFullURI), map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": badToken}), nil, fetch.ErrConfig, "line break"},
		{"full uri token file missing", merge(f.env(ProviderFullURI), map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/nonexistent/token"}), nil, fetch.ErrConfig, "/nonexistent/token"},
		{"full uri plain http elsewhere", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.1.2.3/creds"}, nil, fetch.ErrConfig, "only to loopback"},
		{"full uri bad scheme", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/creds"}, nil, fetch.ErrConfig, "scheme"},
		{"full uri unresolvable", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://agent.invalid/creds"}, nil, fetch.ErrConfig, "does not resolve"},
		{"web identity no role", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": f.jwtFile}, nil, fetch.ErrConfig, "AWS_ROLE_ARN"},
		{"web identity missing file", merge(f.env(ProviderWebIdentity), map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/jwt"}), nil, fetch.ErrConfig, "/nonexistent/jwt"},
		{"web identity wrong role", merge(f.env(ProviderWebIdentity), map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/other"}), nil, fetch.ErrAuth, "AccessDenied"},
		{"web identity bad session name", merge(f.env(ProviderWebIdentity), map[string]string{"AWS_ROLE_SESSION_NAME": "has space"}), nil, fetch.ErrConfig, "AWS_ROLE_SESSION_NAME"},
		{"web identity sts down", f.env(ProviderWebIdentity), func() { f.sts.FailWith(503) }, fetch.ErrUnavailable, "503"},
		{"imds no role", f.env(ProviderIMDS), func() { f.imds.Role = "" }, fetch.ErrConfig, "no IAM role"},
		{"imds server error", f.env(ProviderIMDS), func() { f.imds.FailWith(500) }, fetch.ErrUnavailable, "500"},
		{"imds bad endpoint", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"}, nil, fetch.ErrConfig, "not an http(s) URL"},
		{"imds bad mode", map[string]string{"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv5"}, nil, fetch.ErrConfig, "IPv4 or IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.ecs.FailWith(0)
			f.sts.FailWith(0)
			f.imds.FailWith(0)
			f.imds.Role = "fake-instance-role"
			if tt.setup != nil {
				tt.setup()
			}
			_, _, err := newResolver(t, tt.env).resolveCredentials(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			checkNoSecret(t, "error", err.Error())
			if strings.Contains(err.Error(), fakeECSPath) {
				t.Errorf("error names the ECS credentials path")
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("err = %v, want class %v", err, tt.class)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	f.ecs.FailWith(500)
	_, _, err := newResolver(t, f.env(ProviderECS)).resolveCredentials(context.Background())
	if !errors.Is(err, fetch.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := f.ecs.Requests(); n != containerAttempts {
		t.Errorf("ecs requests = %d, want %d", n, containerAttempts)
	}
}

func TestIMDSv2Protocol(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	c, p, err := newResolver(t, f.env(ProviderIMDS)).resolveCredentials(context.Background())
	if err != nil || p != ProviderIMDS {
		t.Fatalf("provider %s, err %v", p, err)
	}
	sameCreds(t, c, imdsCreds)
	issued, ttl, unauth := f.imds.TokenRequests()
	if issued != 1 || ttl != imdsTokenTTL || unauth != 0 {
		t.Errorf("token requests %d (ttl %q), unauthorized GETs %d; want 1, %q, 0", issued, ttl, unauth, imdsTokenTTL)
	}
	if f.imds.Requests() != 3 {
		t.Errorf("imds requests = %d, want 3 (token, role, credentials)", f.imds.Requests())
	}
}

func TestContainerAuthorization(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"token file", f.env(ProviderFullURI)},
		{"token variable", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": f.full.FullURI(), "AWS_CONTAINER_AUTHORIZATION_TOKEN": fakePodToken}},
		{"file wins over variable", merge(f.env(ProviderFullURI), map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale"})},
		{"localhost", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": strings.Replace(f.full.FullURI(), "127.0.0.1", "localhost", 1), "AWS_CONTAINER_AUTHORIZATION_TOKEN": fakePodToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := newResolver(t, tt.env).resolveCredentials(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sameCreds(t, c, fullCreds)
			if present, matched := f.full.LastAuthorization(); !present || !matched {
				t.Errorf("authorization present %t, matched %t", present, matched)
			}
		})
	}
	// The ECS relative endpoint gets no Authorization unless one is configured.
	if _, _, err := newResolver(t, f.env(ProviderECS)).resolveCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if present, _ := f.ecs.LastAuthorization(); present {
		t.Errorf("ECS relative request carried an Authorization header")
	}
}

func TestFullURIHostRules(t *testing.T) {
	lookup := lookupIP
	t.Cleanup(func() { lookupIP = lookup })
	lookupIP = func(_ context.Context, host string) ([]net.IPAddr, error) {
		switch host {
		case "agent.local":
			return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}, {IP: net.ParseIP("::1")}}, nil
		case "mixed.local":
			return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}, {IP: net.ParseIP("10.0.0.1")}}, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/creds", true},
		{"http://127.9.9.9/creds", true},
		{"http://[::1]:80/creds", true},
		{"http://localhost/creds", true},
		{"http://169.254.170.2/v2/credentials", true},
		{"http://169.254.170.23/v1/credentials", true},
		{"http://[fd00:ec2::23]/v1/credentials", true},
		{"http://agent.local/creds", true},
		{"https://creds.example.com/x", true},
		{"http://169.254.169.254/latest", false},
		{"http://10.0.0.1/creds", false},
		{"http://mixed.local/creds", false},
		{"http://unknown.local/creds", false},
		{"file:///etc/passwd", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		err = checkFullURIHost(context.Background(), u)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%t", tt.url, err, tt.ok)
		}
		if err != nil && !errors.Is(err, fetch.ErrConfig) {
			t.Errorf("%s: error class %v", tt.url, err)
		}
	}
}

func TestWebIdentityEndpoint(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"global without region", nil, "https://sts.amazonaws.com"},
		{"regional", map[string]string{"AWS_REGION": "eu-west-1"}, "https://sts.eu-west-1.amazonaws.com"},
		{"default region", map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}, "https://sts.ap-south-1.amazonaws.com"},
		{"AWS_REGION first", map[string]string{"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"}, "https://sts.us-west-2.amazonaws.com"},
		{"china", map[string]string{"AWS_REGION": "cn-north-1"}, "https://sts.cn-north-1.amazonaws.com.cn"},
		{"service endpoint", map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9", "AWS_ENDPOINT_URL": "http://127.0.0.1:8"}, "http://127.0.0.1:9"},
		{"global endpoint url", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:8"}, "http://127.0.0.1:8"},
		{"ignored endpoint urls", map[string]string{"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "https://sts.amazonaws.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolver{getenv: envMap(tt.env)}.webIdentityEndpoint()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("endpoint = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := (resolver{getenv: envMap(map[string]string{"AWS_REGION": "evil.com/x"})}).webIdentityEndpoint(); !errors.Is(err, fetch.ErrConfig) {
		t.Errorf("bad region: err = %v", err)
	}
}

func TestWebIdentitySession(t *testing.T) {
	loopbackOnly(t)
	f := startFakes(t)
	env := merge(f.env(ProviderWebIdentity), map[string]string{"AWS_ROLE_SESSION_NAME": "my-session"})
	if _, _, err := newResolver(t, env).resolveCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.sts.LastSessionName(); got != "my-session" {
		t.Errorf("session = %q", got)
	}
	if _, _, err := newResolver(t, f.env(ProviderWebIdentity)).resolveCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.sts.LastSessionName(); !isSessionName(got) || !strings.HasPrefix(got, "phase-shim-") {
		t.Errorf("default session = %q", got)
	}
	// The test override wins over the environment.
	webIdentitySTSOverride = f.sts.URL
	env = merge(f.env(ProviderWebIdentity), map[string]string{"AWS_ENDPOINT_URL_STS": closedPort(t)})
	if _, _, err := newResolver(t, env).resolveCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestParseCredentialsJSON(t *testing.T) {
	tests := []struct {
		body  string
		class error
	}{
		{`{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z"}`, nil},
		{`{"AccessKeyId":"A","SecretAccessKey":"S"}`, nil},
		{`{"Code":"Success","AccessKeyId":"A","SecretAccessKey":"S"}`, nil},
		{`{"Code":"AssumeRoleUnauthorizedAccess","Message":"no"}`, fetch.ErrAuth},
		{`{"AccessKeyId":"A"}`, fetch.ErrProtocol},
		{`{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"tomorrow"}`, fetch.ErrProtocol},
		{`not json`, fetch.ErrProtocol},
	}
	for _, tt := range tests {
		_, err := parseCredentialsJSON("test", []byte(tt.body))
		if tt.class == nil && err != nil || tt.class != nil && !errors.Is(err, tt.class) {
			t.Errorf("%s: err = %v, want %v", tt.body, err, tt.class)
		}
	}
	c, _ := parseCredentialsJSON("test", []byte(`{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z"}`))
	if d := cmp.Diff(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), c.Expires); d != "" {
		t.Errorf("expires: %s", d)
	}
}

func FuzzParseCredentialsJSON(f *testing.F) {
	f.Add([]byte(`{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"Code":"x","Message":"y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseCredentialsJSON("fuzz", body)
		if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
			t.Fatal("accepted credentials without keys")
		}
		if err != nil && c.SecretAccessKey != "" {
			t.Fatal("error with credentials")
		}
	})
}

func FuzzParseAssumeRoleWithWebIdentity(f *testing.F) {
	f.Add([]byte(`<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseAssumeRoleWithWebIdentity("fuzz", body)
		if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "") {
			t.Fatal("accepted incomplete credentials")
		}
	})
}

// recordingTB captures the guard's complaints instead of failing the test,
// so the guard itself can be tested.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// TestGuardCatchesRealAddresses proves the dial guard works: with the real
// default addresses, the IMDS and ECS providers try 169.254.169.254 and
// 169.254.170.2, and the guard refuses before any packet is sent.
func TestGuardCatchesRealAddresses(t *testing.T) {
	loopbackOnly(t)
	rec := &recordingTB{TB: t}
	dialContext = awstest.LoopbackDial(rec)
	ecsHost = "169.254.170.2"

	_, _, err := newResolver(t, map[string]string{"AWS_EC2_METADATA_DISABLED": "false"}).resolveCredentials(context.Background())
	if !errors.Is(err, fetch.ErrConfig) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Errorf("imds with a refused dial: err = %v", err)
	}
	_, _, err = newResolver(t, map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": fakeECSPath}).resolveCredentials(context.Background())
	if !errors.Is(err, fetch.ErrUnavailable) {
		t.Errorf("ecs with a refused dial: err = %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	joined := strings.Join(rec.msgs, "\n")
	for _, addr := range []string{"169.254.169.254:80", "169.254.170.2:80"} {
		if !strings.Contains(joined, addr) {
			t.Errorf("guard did not report a dial to %s; it saw: %q", addr, joined)
		}
	}
}

func TestXMLPath(t *testing.T) {
	doc := `<?xml version="1.0"?>
<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyIdX>decoy</AccessKeyIdX>
      <AccessKeyId>ASIA1</AccessKeyId>
      <SecretAccessKey>a+b/c=&amp;&#x41;&#66;&lt;</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration/>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`
	base := []string{"AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult", "Credentials"}
	tests := []struct {
		leaf string
		want string
		ok   bool
	}{
		{"AccessKeyId", "ASIA1", true},
		{"SecretAccessKey", "a+b/c=&AB<", true},
		{"Expiration", "", true},
		{"Missing", "", false},
	}
	for _, tt := range tests {
		got, ok := xmlPath(doc, append(base, tt.leaf)...)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: got %q %t, want %q %t", tt.leaf, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := xmlPath(doc, "AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult"); ok {
		t.Errorf("an element holding markup was returned as text")
	}
	for _, bad := range []string{"&bogus;", "&#0;", "&#x110000;", "a & b"} {
		if _, ok := xmlUnescape(bad); ok {
			t.Errorf("xmlUnescape(%q) accepted", bad)
		}
	}
}

// FuzzXMLAgainstEncodingXML: whenever the small reader extracts
// credentials from a document encoding/xml also accepts, both agree.
func FuzzXMLAgainstEncodingXML(f *testing.F) {
	f.Add("ASIA1", "s&amp;k", "tok")
	f.Add("A", "B", "&#x41;")
	f.Fuzz(func(t *testing.T, ak, sk, tok string) {
		doc := "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>" + ak +
			"</AccessKeyId><SecretAccessKey>" + sk + "</SecretAccessKey><SessionToken>" + tok +
			"</SessionToken></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
		mine, err := parseAssumeRoleWithWebIdentity("fuzz", []byte(doc))
		if err != nil {
			return
		}
		var ref struct {
			Result struct {
				Credentials struct {
					AccessKeyID     string `xml:"AccessKeyId"`
					SecretAccessKey string `xml:"SecretAccessKey"`
					SessionToken    string `xml:"SessionToken"`
				} `xml:"Credentials"`
			} `xml:"AssumeRoleWithWebIdentityResult"`
		}
		if xml.Unmarshal([]byte(doc), &ref) != nil {
			return
		}
		c := ref.Result.Credentials
		if c.AccessKeyID != mine.AccessKeyID || c.SecretAccessKey != mine.SecretAccessKey || c.SessionToken != mine.SessionToken {
			t.Fatalf("readers disagree on %q", doc)
		}
	})
}
