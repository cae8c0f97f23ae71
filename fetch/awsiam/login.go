package awsiam

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/fetch"
)

// Defaults shared with the command line.
const (
	// DefaultSTSEndpoint is what a Phase AWS IAM identity is configured with
	// unless the user picks another; the signed host must equal it.
	DefaultSTSEndpoint = "https://sts.amazonaws.com"
	defaultPhaseHost   = "https://console.phase.dev"
	// AuthPath is Phase's external-identity login route under the host.
	AuthPath = "/service/public/identities/external/v1/aws/iam/auth/"

	getCallerIdentityBody = "Action=GetCallerIdentity&Version=2011-06-15"
	stsContentType        = "application/x-www-form-urlencoded; charset=utf-8"
)

// Options configure one login.
type Options struct {
	ServiceAccountID string        // Phase service account (uuid) carrying the AWS IAM identity
	TTL              time.Duration // requested token lifetime; 0 = the identity's default
	STSEndpoint      string        // URL to sign for; must equal the identity's stsEndpoint; "" = DefaultSTSEndpoint; "regional" = https://sts.<AWS_REGION>.amazonaws.com
	Host             string        // Phase origin; "" = https://console.phase.dev
	HTTPClient       *http.Client  // for the Phase call (TLS roots, proxies); nil = a plain client
	Getenv           func(string) string
	Debugf           func(string, ...any) // never given a secret
	UserAgent        string               // "" = "phase-shim"

	// ECSHostForTests replaces the ECS agent's address (169.254.170.2) for
	// the relative-URI provider. Test-only: it exists so the binary's
	// end-to-end tests can reach a loopback fake of the agent. Only a
	// loopback IP literal with a port (127.0.0.0/8 or [::1]) is accepted;
	// anything else fails the login with ErrConfig before any request. An
	// error rather than ignoring it: ignoring would fall back to the real
	// link-local agent, the one address a test must never contact, and a
	// value that could reach a network host is never used.
	ECSHostForTests string
}

// Login finds AWS credentials, signs an STS GetCallerIdentity request with
// them and trades it with Phase for a pss_service:v2 token. provider names
// the credential source (ProviderECS, …). The token is returned, never
// logged, and never placed in an error.
func Login(ctx context.Context, o Options) (token string, provider string, err error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	debugf := o.Debugf
	if debugf == nil {
		debugf = func(string, ...any) {}
	}
	if strings.TrimSpace(o.ServiceAccountID) == "" {
		return "", "", fmt.Errorf("%w: aws iam login needs a service account id (--aws-iam-service-account-id)", fetch.ErrConfig)
	}
	ttl := 0
	if o.TTL != 0 {
		if o.TTL < time.Second {
			return "", "", fmt.Errorf("%w: aws iam token ttl %v is shorter than one second", fetch.ErrConfig, o.TTL)
		}
		ttl = int(o.TTL / time.Second)
	}
	target, region, err := stsTarget(o.STSEndpoint, getenv)
	if err != nil {
		return "", "", err
	}
	authURL, err := phaseAuthURL(o.Host)
	if err != nil {
		return "", "", err
	}

	r := resolver{getenv: getenv, debugf: debugf, now: time.Now}
	if o.ECSHostForTests != "" {
		h, ok := loopbackHostPort(o.ECSHostForTests)
		if !ok {
			return "", "", fmt.Errorf("%w: the test-only ECS agent address %q is not a loopback IP:port (127.0.0.0/8 or [::1])", fetch.ErrConfig, printable(o.ECSHostForTests, 80))
		}
		r.ecsHost = h
		debugf("aws credentials: ECS agent address overridden for tests: %s", h)
	}
	creds, provider, err := r.resolveCredentials(ctx)
	if err != nil {
		return "", "", err
	}
	if !creds.Expires.IsZero() && creds.Expires.Before(time.Now()) {
		// STS will refuse them; Phase then answers "AWS STS validation failed".
		debugf("aws iam: the %s credentials expired at %s", provider, creds.Expires.UTC().Format(time.RFC3339))
	}
	debugf("aws iam: signing GetCallerIdentity for %s (region %s) with %s credentials", target, region, provider)

	client := o.HTTPClient
	if client == nil {
		client = newClient(10*time.Second, phaseRequestTimeout, true)
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "phase-shim"
	}
	what := "phase aws iam login at " + authURL
	resp, err := do(ctx, client, phaseAttempts, retryServerErrors, func() (*http.Request, error) {
		// Signed per attempt: Phase accepts an X-Amz-Date at most 60 s old.
		body, err := authRequestBody(o.ServiceAccountID, ttl, creds, target, region, time.Now())
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequest(http.MethodPost, authURL, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", fetch.ErrConfig, what, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", ua)
		return req, nil
	})
	if err != nil {
		return "", provider, classifyNetwork(what, err)
	}
	if resp.status != http.StatusOK {
		return "", provider, phaseError(what, resp, target)
	}
	tok, ttlGot, err := parseAuthResponse(resp.body)
	if err != nil {
		return "", provider, fmt.Errorf("%w: %s: %v", fetch.ErrProtocol, what, err)
	}
	debugf("aws iam: phase issued a service account token (ttl %ds)", ttlGot)
	return tok, provider, nil
}

// stsHostRegion reads the region out of an STS host name:
// [prefix.]sts[-fips].<region>.[vpce.]amazonaws.com[.cn].
func stsHostRegion(host string) (string, bool) {
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		if rest, ok = strings.CutSuffix(host, ".amazonaws.com.cn"); !ok {
			return "", false
		}
	}
	rest = strings.TrimSuffix(rest, ".vpce")
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return "", false
	}
	region, service := rest[dot+1:], rest[:dot]
	if i := strings.LastIndexByte(service, '.'); i >= 0 {
		service = service[i+1:]
	}
	if (service != "sts" && service != "sts-fips") || !isRegion(region) {
		return "", false
	}
	return region, true
}

// stsTarget resolves the URL to sign for and the signing region. A host
// that names its region (sts.eu-west-1.amazonaws.com, FIPS and VPC endpoint
// names) decides the region, since STS rejects any other; the global host is
// us-east-1; anything else takes AWS_REGION / AWS_DEFAULT_REGION.
func stsTarget(endpoint string, getenv func(string) string) (*url.URL, string, error) {
	envRegion := firstSet(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if envRegion != "" && !isRegion(envRegion) {
		return nil, "", fmt.Errorf("%w: AWS_REGION %q is not a region name", fetch.ErrConfig, printable(envRegion, 40))
	}
	switch endpoint {
	case "":
		endpoint = DefaultSTSEndpoint
	case "regional":
		if envRegion == "" {
			return nil, "", fmt.Errorf("%w: --aws-sts-endpoint regional needs AWS_REGION or AWS_DEFAULT_REGION", fetch.ErrConfig)
		}
		endpoint = "https://sts." + envRegion + "." + partitionDomain(envRegion)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, "", fmt.Errorf("%w: aws sts endpoint %q is not an http(s) URL", fetch.ErrConfig, printable(endpoint, 100))
	}
	host := strings.ToLower(u.Hostname())
	if host == "sts.amazonaws.com" {
		return u, "us-east-1", nil
	}
	if r, ok := stsHostRegion(host); ok {
		return u, r, nil
	}
	if envRegion != "" {
		return u, envRegion, nil
	}
	return u, "us-east-1", nil
}

func phaseAuthURL(host string) (string, error) {
	if host == "" {
		host = defaultPhaseHost
	}
	host = strings.TrimRight(host, "/")
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: phase host %q is not an http(s) URL", fetch.ErrConfig, printable(host, 100))
	}
	return host + AuthPath, nil
}

// signedGetCallerIdentity signs the STS request Phase will replay and returns
// the header map Phase expects. It signs the botocore way (content-type,
// host, x-amz-date, x-amz-security-token) and lists Content-Length unsigned,
// the exact shape of Phase's own test fixture: Phase replays the headers
// to its configured endpoint, so nothing else may be signed that its HTTP
// client could set differently.
func signedGetCallerIdentity(c Credentials, target *url.URL, region string, now time.Time) (map[string]string, error) {
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(getCallerIdentityBody))
	if err != nil {
		return nil, fmt.Errorf("%w: aws sts endpoint: %v", fetch.ErrConfig, err)
	}
	req.Header.Set("Content-Type", stsContentType)
	sign(req, []byte(getCallerIdentityBody), c, region, "sts", now, signOptions{})
	h := map[string]string{"Content-Length": strconv.Itoa(len(getCallerIdentityBody))}
	for name := range req.Header {
		h[name] = req.Header.Get(name)
	}
	return h, nil
}

type authRequest struct {
	Account struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"account"`
	AwsIam struct {
		Method  string `json:"httpRequestMethod"`
		URL     string `json:"httpRequestUrl"`
		Headers string `json:"httpRequestHeaders"`
		Body    string `json:"httpRequestBody"`
	} `json:"awsIam"`
	TokenRequest *struct {
		TTL int `json:"ttl"`
	} `json:"tokenRequest,omitempty"`
}

func authRequestBody(accountID string, ttl int, c Credentials, target *url.URL, region string, now time.Time) ([]byte, error) {
	headers, err := signedGetCallerIdentity(c, target, region, now)
	if err != nil {
		return nil, err
	}
	hj, err := json.Marshal(headers)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding signed headers: %v", fetch.ErrProtocol, err)
	}
	var ar authRequest
	ar.Account.Type = "service"
	ar.Account.ID = strings.TrimSpace(accountID)
	ar.AwsIam.Method = http.MethodPost
	b64 := base64.StdEncoding.EncodeToString
	ar.AwsIam.URL = b64([]byte(target.String()))
	ar.AwsIam.Headers = b64(hj)
	ar.AwsIam.Body = b64([]byte(getCallerIdentityBody))
	if ttl > 0 {
		ar.TokenRequest = &struct {
			TTL int `json:"ttl"`
		}{ttl}
	}
	return json.Marshal(ar)
}

// isServiceV2Token checks the shape pss_service:v2 followed by four
// 64-hex fields. (Hand-written, like the other checks here: a regexp
// compiled at package init costs every start of the binary.)
func isServiceV2Token(tok string) bool {
	rest, ok := strings.CutPrefix(tok, "pss_service:v2:")
	if !ok {
		return false
	}
	fields := strings.Split(rest, ":")
	if len(fields) != 4 {
		return false
	}
	for _, f := range fields {
		if len(f) != 64 {
			return false
		}
		for i := 0; i < len(f); i++ {
			c := f[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

type authResponse struct {
	Authentication struct {
		TokenType string `json:"tokenType"`
		Token     string `json:"token"`
		TTL       int    `json:"TTL"`
	} `json:"authentication"`
}

// parseAuthResponse extracts the minted token. Its errors describe the
// shape only; the body holds the token.
func parseAuthResponse(body []byte) (string, int, error) {
	var ar authResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return "", 0, fmt.Errorf("response is not the expected JSON object (%d bytes)", len(body))
	}
	tok := ar.Authentication.Token
	if tok == "" {
		return "", 0, fmt.Errorf("response has no authentication.token")
	}
	if !isServiceV2Token(tok) {
		return "", 0, fmt.Errorf("authentication.token is not a pss_service:v2 token (%d bytes)", len(tok))
	}
	return tok, ar.Authentication.TTL, nil
}

// phaseError maps Phase's refusal to an exit class and keeps Phase's words,
// with a hint for the mistakes people make.
func phaseError(what string, r response, target *url.URL) error {
	var parsed map[string]any
	_ = json.Unmarshal(r.body, &parsed)
	msg := serverMessage(r.body, parsed)
	if msg == "" {
		msg = http.StatusText(r.status)
	}
	var class error
	hint := ""
	switch {
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		class = fetch.ErrAuth
		switch {
		case strings.Contains(msg, "Signature expired"):
			hint = " (this machine's clock must be within the identity's signature TTL, default 60 s, of Phase's)"
		case strings.Contains(msg, "Untrusted principal"):
			hint = " (add the caller's ARN to the identity's trusted principals; for an ECS task role that is arn:aws:sts::<account>:assumed-role/<role>/*)"
		case strings.Contains(msg, "STS validation failed"):
			hint = " (STS refused the signed request: expired or revoked credentials, or a signing region that does not match the endpoint)"
		}
	case r.status == http.StatusBadRequest || r.status == http.StatusNotFound:
		class = fetch.ErrConfig
		exp, _ := parsed["expectedEndpoint"].(string)
		got, _ := parsed["receivedEndpoint"].(string)
		if exp != "" || strings.Contains(msg, "endpoint mismatch") {
			hint = fmt.Sprintf(" (signed for %s", target.String())
			if got != "" {
				hint += fmt.Sprintf(", phase received %s", printable(got, 100))
			}
			if exp != "" {
				hint += fmt.Sprintf(", the identity expects %s", printable(exp, 100))
			}
			hint += "; set --aws-sts-endpoint / PHASE_AWS_STS_ENDPOINT to the identity's STS endpoint)"
		}
	case r.status >= 500 || r.status == http.StatusTooManyRequests:
		class = fetch.ErrUnavailable
	default:
		class = fetch.ErrProtocol
	}
	return fmt.Errorf("%w: %s answered %d: %s%s", class, what, r.status, msg, hint)
}
