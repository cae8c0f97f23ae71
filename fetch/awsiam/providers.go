package awsiam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/fetch"
)

// Provider names, as returned by Login and shown in logs.
const (
	ProviderEnv         = "environment"
	ProviderWebIdentity = "web-identity"
	ProviderECS         = "ecs-task-role"
	ProviderFullURI     = "container-full-uri"
	ProviderIMDS        = "ec2-instance-metadata"
)

// Endpoint addresses that only tests change. No flag or AWS variable can
// move the ECS host: the relative URI is trusted precisely because it goes
// to the agent's link-local address. The one exception,
// Options.ECSHostForTests, accepts loopback addresses only.
var (
	ecsHost          = "169.254.170.2"
	imdsEndpointIPv4 = "http://169.254.169.254"
	imdsEndpointIPv6 = "http://[fd00:ec2::254]"
	// webIdentitySTSOverride, when set, wins over AWS_ENDPOINT_URL_STS.
	webIdentitySTSOverride = ""
	// lookupIP resolves a full-URI host for the allowed-host check.
	lookupIP = net.DefaultResolver.LookupIPAddr
)

// imdsTokenTTL is what we ask IMDSv2 for: the SDK default; we use the token
// for two requests within a second.
const imdsTokenTTL = "300"

type resolver struct {
	getenv func(string) string
	debugf func(string, ...any)
	now    func() time.Time
	// ecsHost, when set, replaces the package's ecsHost; Login sets it only
	// from a checked loopback Options.ECSHostForTests.
	ecsHost string
}

// resolveCredentials walks the provider chain in the AWS SDK's order. Like
// the SDK it stops at the first provider that is configured: a task that
// sets AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and cannot reach the agent
// fails loudly instead of quietly taking the instance's role from IMDS.
func (r resolver) resolveCredentials(ctx context.Context) (Credentials, string, error) {
	var tried []string

	ak := firstSet(r.getenv("AWS_ACCESS_KEY_ID"), r.getenv("AWS_ACCESS_KEY"))
	sk := firstSet(r.getenv("AWS_SECRET_ACCESS_KEY"), r.getenv("AWS_SECRET_KEY"))
	switch {
	case ak != "" && sk != "":
		r.debugf("aws credentials: using environment keys (access key %s, session token %t)", ak, r.getenv("AWS_SESSION_TOKEN") != "")
		return Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: r.getenv("AWS_SESSION_TOKEN")}, ProviderEnv, nil
	case ak != "":
		tried = append(tried, "environment (AWS_ACCESS_KEY_ID set but AWS_SECRET_ACCESS_KEY unset)")
	case sk != "":
		tried = append(tried, "environment (AWS_SECRET_ACCESS_KEY set but AWS_ACCESS_KEY_ID unset)")
	default:
		tried = append(tried, "environment (AWS_ACCESS_KEY_ID unset)")
	}

	if f := r.getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); f != "" {
		c, err := r.webIdentity(ctx, f)
		return c, ProviderWebIdentity, err
	}
	tried = append(tried, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE unset)")

	if rel := r.getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		c, err := r.ecsRelative(ctx, rel)
		return c, ProviderECS, err
	}
	tried = append(tried, "ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI unset)")

	if full := r.getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); full != "" {
		c, err := r.containerFull(ctx, full)
		return c, ProviderFullURI, err
	}
	tried = append(tried, "container full URI (AWS_CONTAINER_CREDENTIALS_FULL_URI unset)")

	if strings.EqualFold(strings.TrimSpace(r.getenv("AWS_EC2_METADATA_DISABLED")), "true") {
		tried = append(tried, "EC2 instance metadata (AWS_EC2_METADATA_DISABLED=true)")
		return Credentials{}, "", noCredentials(tried)
	}
	c, err := r.imds(ctx)
	var unreachable *imdsUnreachableError
	if errors.As(err, &unreachable) {
		tried = append(tried, fmt.Sprintf("EC2 instance metadata at %s (%v)", unreachable.endpoint, unreachable.err))
		return Credentials{}, "", noCredentials(tried)
	}
	return c, ProviderIMDS, err
}

func noCredentials(tried []string) error {
	return fmt.Errorf("%w: no aws credentials found; tried: %s (on ECS, give the task definition a taskRoleArn; the executionRoleArn is not visible to the container)",
		fetch.ErrConfig, strings.Join(tried, "; "))
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// containerCredentials is the JSON both container endpoints and IMDS return;
// errors come back as {"code","message"} (container) or a non-Success Code.
type containerCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
	Code            string `json:"Code"`
	Message         string `json:"Message"`
}

// parseCredentialsJSON reads the credential document of the container
// endpoints and IMDS. Its error never quotes the body: on success the body
// holds a secret key.
func parseCredentialsJSON(what string, body []byte) (Credentials, error) {
	var cc containerCredentials
	if err := json.Unmarshal(body, &cc); err != nil {
		return Credentials{}, fmt.Errorf("%w: %s: credentials response is not JSON (%d bytes)", fetch.ErrProtocol, what, len(body))
	}
	if cc.Code != "" && cc.Code != "Success" {
		return Credentials{}, fmt.Errorf("%w: %s: credentials response code %s: %s", fetch.ErrAuth, what, printable(cc.Code, 80), printable(cc.Message, 200))
	}
	if cc.AccessKeyID == "" || cc.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("%w: %s: credentials response lacks AccessKeyId or SecretAccessKey", fetch.ErrProtocol, what)
	}
	c := Credentials{AccessKeyID: cc.AccessKeyID, SecretAccessKey: cc.SecretAccessKey, SessionToken: cc.Token}
	if cc.Expiration != "" {
		t, err := time.Parse(time.RFC3339, cc.Expiration)
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: %s: credentials Expiration %q is not RFC 3339", fetch.ErrProtocol, what, printable(cc.Expiration, 40))
		}
		c.Expires = t
	}
	return c, nil
}

// statusError maps a non-200 answer from a credential endpoint to an error
// class: refusals are auth failures, server trouble is unavailability.
func statusError(what string, r response) error {
	var parsed map[string]any
	_ = json.Unmarshal(r.body, &parsed)
	msg := serverMessage(r.body, parsed)
	class := fetch.ErrProtocol
	switch {
	case r.status == http.StatusBadRequest, r.status == http.StatusUnauthorized, r.status == http.StatusForbidden, r.status == http.StatusNotFound:
		class = fetch.ErrAuth
	case r.status >= 500, r.status == http.StatusTooManyRequests:
		class = fetch.ErrUnavailable
	}
	if msg == "" {
		return fmt.Errorf("%w: %s answered %d", class, what, r.status)
	}
	return fmt.Errorf("%w: %s answered %d: %s", class, what, r.status, msg)
}

// --- ECS task role and container full URI -----------------------------------

func (r resolver) ecsRelative(ctx context.Context, rel string) (Credentials, error) {
	// The path is appended to a fixed host; a value like "@evil.example/" would
	// otherwise move the whole request (and its token) elsewhere.
	if !strings.HasPrefix(rel, "/") {
		return Credentials{}, fmt.Errorf("%w: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with \"/\"", fetch.ErrConfig)
	}
	host := ecsHost
	if r.ecsHost != "" {
		host = r.ecsHost
	}
	u, err := url.Parse("http://" + host + rel)
	if err != nil || u.Host != host {
		return Credentials{}, fmt.Errorf("%w: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a valid path", fetch.ErrConfig)
	}
	r.debugf("aws credentials: ECS task role from http://%s (relative URI, %d bytes)", host, len(rel))
	return r.containerGet(ctx, "ECS credentials endpoint http://"+host, u)
}

// loopbackHostPort accepts an IP literal in 127.0.0.0/8 or ::1 with a
// numeric port and returns it in URL host form ("[::1]:8080"). Names, even
// "localhost", are refused: a name's resolution is outside our control.
func loopbackHostPort(s string) (string, bool) {
	h, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", false
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return "", false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", false
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(n, 10)), true
}

func (r resolver) containerFull(ctx context.Context, full string) (Credentials, error) {
	u, err := url.Parse(full)
	if err != nil || u.Host == "" {
		return Credentials{}, fmt.Errorf("%w: AWS_CONTAINER_CREDENTIALS_FULL_URI is not an absolute URL", fetch.ErrConfig)
	}
	if err := checkFullURIHost(ctx, u); err != nil {
		return Credentials{}, err
	}
	r.debugf("aws credentials: container credentials from %s://%s", u.Scheme, u.Host)
	return r.containerGet(ctx, "container credentials endpoint "+u.Scheme+"://"+u.Host, u)
}

// allowedFullURIIPs are the agents' link-local addresses: ECS, EKS Pod
// Identity (IPv4 and IPv6).
var allowedFullURIIPs = []net.IP{
	net.ParseIP("169.254.170.2"),
	net.ParseIP("169.254.170.23"),
	net.ParseIP("fd00:ec2::23"),
}

// checkFullURIHost applies the SDKs' rule: plain http only to loopback or
// the container agents' link-local addresses (every resolved address must
// qualify), https to anything.
func checkFullURIHost(ctx context.Context, u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
	default:
		return fmt.Errorf("%w: AWS_CONTAINER_CREDENTIALS_FULL_URI scheme %q is not http or https", fetch.ErrConfig, u.Scheme)
	}
	host := u.Hostname()
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if strings.EqualFold(host, "localhost") {
		// RFC 6761: always loopback; no lookup needed.
		return nil
	} else {
		addrs, err := lookupIP(ctx, host)
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("%w: AWS_CONTAINER_CREDENTIALS_FULL_URI host %q does not resolve", fetch.ErrConfig, host)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if !allowedFullURIIP(ip) {
			return fmt.Errorf("%w: invalid AWS_CONTAINER_CREDENTIALS_FULL_URI host %q: plain http is allowed only to loopback or the ECS/EKS agent addresses (169.254.170.2, 169.254.170.23, fd00:ec2::23); use https otherwise", fetch.ErrConfig, host)
		}
	}
	return nil
}

func allowedFullURIIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	for _, a := range allowedFullURIIPs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

// containerAuthToken reads the Authorization value: the token file wins over
// the variable and is re-read on every retrieval (EKS rotates it).
func (r resolver) containerAuthToken() (string, error) {
	tok := r.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if f := r.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("%w: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %v", fetch.ErrConfig, pathErr(err))
		}
		tok = strings.TrimRight(string(data), "\r\n")
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("%w: the container authorization token contains a line break", fetch.ErrConfig)
	}
	return tok, nil
}

// pathErr keeps the path and the reason of a file error (no content).
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

func (r resolver) containerGet(ctx context.Context, what string, u *url.URL) (Credentials, error) {
	tok, err := r.containerAuthToken()
	if err != nil {
		return Credentials{}, err
	}
	client := newClient(containerDialTimeout, containerRequestTimeout, u.Scheme == "https")
	resp, err := do(ctx, client, containerAttempts, retryServerErrors, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", fetch.ErrConfig, what, err)
		}
		req.Header.Set("Accept", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		return req, nil
	})
	if err != nil {
		return Credentials{}, classifyNetwork(what, err)
	}
	if resp.status != http.StatusOK {
		return Credentials{}, statusError(what, resp)
	}
	return parseCredentialsJSON(what, resp.body)
}

// --- web identity (IRSA and any OIDC token) ----------------------------------

// isSessionName is STS's RoleSessionName rule: [\w+=,.@-]{2,64}.
func isSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return false
		}
	}
	return true
}

// isRegion accepts names shaped like AWS regions, [a-z0-9]+(-[a-z0-9]+)+,
// so a region can be put into a host name safely.
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

func (r resolver) webIdentity(ctx context.Context, tokenFile string) (Credentials, error) {
	role := r.getenv("AWS_ROLE_ARN")
	if role == "" {
		return Credentials{}, fmt.Errorf("%w: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not", fetch.ErrConfig)
	}
	session := r.getenv("AWS_ROLE_SESSION_NAME")
	if session == "" {
		session = "phase-shim-" + strconv.FormatInt(r.now().UnixNano(), 10)
	}
	if !isSessionName(session) {
		return Credentials{}, fmt.Errorf("%w: AWS_ROLE_SESSION_NAME must be 2-64 characters of letters, digits and +=,.@_-", fetch.ErrConfig)
	}
	endpoint, err := r.webIdentityEndpoint()
	if err != nil {
		return Credentials{}, err
	}
	what := "STS AssumeRoleWithWebIdentity at " + endpoint
	r.debugf("aws credentials: web identity for role %s via %s", role, endpoint)
	client := newClient(stsDialTimeout, stsRequestTimeout, true)
	resp, err := do(ctx, client, stsAttempts, retryServerErrors, func() (*http.Request, error) {
		// The token file is re-read per attempt: kubelet rotates it.
		jwt, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("%w: AWS_WEB_IDENTITY_TOKEN_FILE: %v", fetch.ErrConfig, pathErr(err))
		}
		form := url.Values{
			"Action":           {"AssumeRoleWithWebIdentity"},
			"Version":          {"2011-06-15"},
			"RoleArn":          {role},
			"RoleSessionName":  {session},
			"WebIdentityToken": {strings.TrimSpace(string(jwt))},
		}
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, fmt.Errorf("%w: sts endpoint %q: %v", fetch.ErrConfig, endpoint, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		req.Header.Set("Accept", "text/xml")
		return req, nil
	})
	if err != nil {
		return Credentials{}, classifyNetwork(what, err)
	}
	if resp.status != http.StatusOK {
		return Credentials{}, stsError(what, resp)
	}
	return parseAssumeRoleWithWebIdentity(what, resp.body)
}

// webIdentityEndpoint follows the SDKs: AWS_ENDPOINT_URL_STS, then
// AWS_ENDPOINT_URL (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), then the
// regional endpoint of AWS_REGION / AWS_DEFAULT_REGION, else the global one.
func (r resolver) webIdentityEndpoint() (string, error) {
	if webIdentitySTSOverride != "" {
		return webIdentitySTSOverride, nil
	}
	if !strings.EqualFold(r.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		if v := firstSet(r.getenv("AWS_ENDPOINT_URL_STS"), r.getenv("AWS_ENDPOINT_URL")); v != "" {
			return v, nil
		}
	}
	region := firstSet(r.getenv("AWS_REGION"), r.getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return "https://sts.amazonaws.com", nil
	}
	if !isRegion(region) {
		return "", fmt.Errorf("%w: AWS_REGION %q is not a region name", fetch.ErrConfig, printable(region, 40))
	}
	return "https://sts." + region + "." + partitionDomain(region), nil
}

func partitionDomain(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

func stsError(what string, r response) error {
	if code, ok := xmlPath(string(r.body), "ErrorResponse", "Error", "Code"); ok && code != "" {
		msg, _ := xmlPath(string(r.body), "ErrorResponse", "Error", "Message")
		class := fetch.ErrAuth
		if r.status >= 500 || r.status == http.StatusTooManyRequests || code == "IDPCommunicationError" {
			class = fetch.ErrUnavailable
		}
		return fmt.Errorf("%w: %s answered %d: %s: %s", class, what, r.status, printable(code, 80), printable(msg, 300))
	}
	return statusError(what, r)
}

func parseAssumeRoleWithWebIdentity(what string, body []byte) (Credentials, error) {
	doc := string(body)
	field := func(name string) string {
		v, _ := xmlPath(doc, "AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult", "Credentials", name)
		return v
	}
	c := Credentials{AccessKeyID: field("AccessKeyId"), SecretAccessKey: field("SecretAccessKey"), SessionToken: field("SessionToken")}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return Credentials{}, fmt.Errorf("%w: %s: response lacks credentials (%d bytes)", fetch.ErrProtocol, what, len(body))
	}
	if exp := field("Expiration"); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: %s: Expiration is not RFC 3339", fetch.ErrProtocol, what)
		}
		c.Expires = t
	}
	return c, nil
}

// xmlPath returns the unescaped text of the element reached by following
// names, each nested in the previous one. It reads the flat, attribute-light
// documents of the AWS Query API only; encoding/xml would cost the binary
// about 100 KB (measured) for these two responses. A leaf holding markup is refused.
func xmlPath(doc string, names ...string) (string, bool) {
	for _, n := range names {
		inner, ok := xmlElement(doc, n)
		if !ok {
			return "", false
		}
		doc = inner
	}
	if strings.ContainsAny(doc, "<>") {
		return "", false
	}
	// XML end-of-line handling, before entities (an escaped &#13; stays).
	doc = strings.ReplaceAll(strings.ReplaceAll(doc, "\r\n", "\n"), "\r", "\n")
	return xmlUnescape(doc)
}

// xmlElement finds the first <name ...>…</name> in s and returns its content.
func xmlElement(s, name string) (string, bool) {
	open := "<" + name
	for i := 0; ; {
		j := strings.Index(s[i:], open)
		if j < 0 {
			return "", false
		}
		k := i + j + len(open)
		i = k
		if k >= len(s) || !strings.ContainsRune("> \t\r\n/", rune(s[k])) {
			continue // a longer name with the same prefix
		}
		end := strings.IndexByte(s[k:], '>')
		if end < 0 {
			return "", false
		}
		if s[k+end-1] == '/' {
			return "", true
		}
		start := k + end + 1
		stop := strings.Index(s[start:], "</"+name+">")
		if stop < 0 {
			return "", false
		}
		return s[start : start+stop], true
	}
}

var xmlEntities = map[string]string{"amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"}

func xmlUnescape(s string) (string, bool) {
	if !strings.Contains(s, "&") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], ';')
		if j < 0 {
			return "", false
		}
		ent := s[i+1 : i+j]
		s = s[i+j+1:]
		if r, ok := xmlEntities[ent]; ok {
			b.WriteString(r)
			continue
		}
		num, ok := strings.CutPrefix(ent, "#")
		if !ok {
			return "", false
		}
		base := 10
		if h, isHex := strings.CutPrefix(num, "x"); isHex {
			num, base = h, 16
		}
		n, err := strconv.ParseUint(num, base, 32)
		if err != nil || n == 0 || n > 0x10FFFF {
			return "", false
		}
		b.WriteRune(rune(n))
	}
}

// --- EC2 IMDSv2 ---------------------------------------------------------------

// imdsUnreachableError means nothing answered at the metadata address: the
// chain reports "no credentials" rather than a network failure.
type imdsUnreachableError struct {
	endpoint string
	err      error
}

func (e *imdsUnreachableError) Error() string {
	return fmt.Sprintf("EC2 instance metadata at %s not reachable: %v", e.endpoint, e.err)
}

func (r resolver) imdsEndpoint() (string, error) {
	if v := r.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("%w: AWS_EC2_METADATA_SERVICE_ENDPOINT %q is not an http(s) URL", fetch.ErrConfig, printable(v, 100))
		}
		return strings.TrimRight(v, "/"), nil
	}
	switch mode := r.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); {
	case mode == "" || strings.EqualFold(mode, "IPv4"):
		return imdsEndpointIPv4, nil
	case strings.EqualFold(mode, "IPv6"):
		return imdsEndpointIPv6, nil
	default:
		return "", fmt.Errorf("%w: AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE %q is not IPv4 or IPv6", fetch.ErrConfig, printable(mode, 40))
	}
}

// imds runs IMDSv2: PUT a session token, list the instance profile's role,
// read its credentials. There is no IMDSv1 fallback: an instance that
// refuses tokens gets a clear error instead of an unauthenticated read.
func (r resolver) imds(ctx context.Context) (Credentials, error) {
	ep, err := r.imdsEndpoint()
	if err != nil {
		return Credentials{}, err
	}
	r.debugf("aws credentials: trying EC2 instance metadata at %s", ep)
	client := newClient(imdsDialTimeout, imdsRequestTimeout, false)
	what := "EC2 instance metadata at " + ep

	// One attempt only for the token: it is also the probe for "is there an
	// IMDS at all", and on Fargate or a laptop the answer must come fast.
	resp, err := do(ctx, client, 1, nil, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPut, ep+"/latest/api/token", nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", fetch.ErrConfig, what, err)
		}
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", imdsTokenTTL)
		return req, nil
	})
	if err != nil {
		if !errors.Is(err, errNetwork) || ctx.Err() != nil {
			return Credentials{}, classifyNetwork(what, err)
		}
		return Credentials{}, &imdsUnreachableError{endpoint: ep, err: err}
	}
	if resp.status != http.StatusOK || len(resp.body) == 0 {
		return Credentials{}, fmt.Errorf("%w: %s refused an IMDSv2 session token (%d); IMDSv1 is not used", imdsClass(resp.status), what, resp.status)
	}
	token := string(resp.body)

	get := func(path string) (response, error) {
		return do(ctx, client, imdsAttempts, func(s int) bool { return s >= 500 }, func() (*http.Request, error) {
			req, err := http.NewRequest(http.MethodGet, ep+path, nil)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", fetch.ErrConfig, what, err)
			}
			req.Header.Set("X-aws-ec2-metadata-token", token)
			return req, nil
		})
	}
	resp, err = get("/latest/meta-data/iam/security-credentials/")
	if err != nil {
		return Credentials{}, classifyNetwork(what, err)
	}
	if resp.status == http.StatusNotFound {
		return Credentials{}, fmt.Errorf("%w: %s: the instance has no IAM role (instance profile)", fetch.ErrConfig, what)
	}
	if resp.status != http.StatusOK {
		return Credentials{}, fmt.Errorf("%w: %s: listing the instance role answered %d", imdsClass(resp.status), what, resp.status)
	}
	role := ""
	for _, line := range strings.Split(string(resp.body), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			role = line
			break
		}
	}
	if role == "" || strings.ContainsAny(role, "/?#%") {
		return Credentials{}, fmt.Errorf("%w: %s: unusable role name in the metadata listing", fetch.ErrProtocol, what)
	}
	r.debugf("aws credentials: instance role %s", role)
	resp, err = get("/latest/meta-data/iam/security-credentials/" + role)
	if err != nil {
		return Credentials{}, classifyNetwork(what, err)
	}
	if resp.status != http.StatusOK {
		return Credentials{}, fmt.Errorf("%w: %s: reading the role's credentials answered %d", imdsClass(resp.status), what, resp.status)
	}
	return parseCredentialsJSON(what, resp.body)
}

func imdsClass(status int) error {
	switch {
	case status >= 500:
		return fetch.ErrUnavailable
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return fetch.ErrAuth
	default:
		return fetch.ErrProtocol
	}
}
