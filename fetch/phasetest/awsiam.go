package phasetest

// The AWS IAM login endpoint (owned by the AWS helper; see fetch/awsiam).
// Phase replays the signed GetCallerIdentity request to STS; offline, the
// emulator plays STS itself when it knows the caller's keys: it recomputes
// the SigV4 signature from what the client sent. Otherwise it checks shape,
// freshness and host only, as the spec allows.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AWSIAMPath is the route Phase clients post AWS IAM logins to.
const AWSIAMPath = "/service/public/identities/external/v1/aws/iam/auth/"

// AWSPrincipal is an AWS identity the emulated STS recognises.
type AWSPrincipal struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // required (and must be signed) when set
	ARN             string // what GetCallerIdentity would return
}

// AWSIAM configures the login endpoint. Zero values mean Phase's defaults.
type AWSIAM struct {
	// App selects the service account: the ServiceV2 account that can read
	// App (Server.AccountID(App, ServiceV2)). Tokens are minted for it.
	App string
	// STSEndpoint is the identity's configured endpoint; the signed URL's
	// host must equal its host. Default https://sts.amazonaws.com.
	STSEndpoint string
	// Principals, when non-empty, turn on the emulated STS: the access key
	// must be listed and the signature must verify with its secret, else
	// 401 "AWS STS validation failed". Empty: any well-formed request passes
	// and the caller's ARN is arn:aws:sts::123456789012:assumed-role/phasetest/<access key id>.
	Principals []AWSPrincipal
	// TrustedPrincipals are fnmatch globs on the caller's ARN; empty trusts
	// every ARN. A bare "*" is refused (400), as Phase does.
	TrustedPrincipals []string
	// TrustedAccessKeys, when non-empty, also require the signing access key
	// id to be listed (403 "Untrusted principal").
	TrustedAccessKeys []string
	SignatureTTL      time.Duration // default 60 s
	DefaultTTL        int           // seconds, default 3600
	MaxTTL            int           // seconds, default 86400
	Now               func() time.Time
}

// AWSIAMLogins reports what the endpoint saw.
type AWSIAMLogins struct {
	mu        sync.Mutex
	ok, total int
	lastKey   string
	lastTTL   int
	headers   []string
}

// Count returns successful and total login requests.
func (l *AWSIAMLogins) Count() (ok, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.total
}

// Last returns the access key id and granted TTL of the last successful
// login, and the header names the client sent (sorted).
func (l *AWSIAMLogins) Last() (accessKeyID string, ttl int, headerNames []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastKey, l.lastTTL, append([]string(nil), l.headers...)
}

// EnableAWSIAM serves the AWS IAM login route on this emulator.
func (s *Server) EnableAWSIAM(c AWSIAM) *AWSIAMLogins {
	if c.STSEndpoint == "" {
		c.STSEndpoint = "https://sts.amazonaws.com"
	}
	if c.SignatureTTL == 0 {
		c.SignatureTTL = 60 * time.Second
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 3600
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = 86400
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	l := &AWSIAMLogins{}
	s.Handle("POST "+AWSIAMPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.total++
		l.mu.Unlock()
		status, body := s.awsIAMLogin(c, l, r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	return l
}

type awsLoginRequest struct {
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
		TTL *int `json:"ttl"`
	} `json:"tokenRequest"`
}

func fail(status int, msg string) (int, any) { return status, map[string]string{"error": msg} }

// awsIAMLogin follows the order of checks of Phase's view.
func (s *Server) awsIAMLogin(c AWSIAM, l *AWSIAMLogins, r *http.Request) (int, any) {
	var req awsLoginRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		return fail(http.StatusBadRequest, "Invalid JSON")
	}
	if req.Account.Type != "service" || req.Account.ID == "" {
		return fail(http.StatusBadRequest, "account.type must be 'service' and account.id is required")
	}
	b64 := base64.StdEncoding
	rawURL, err1 := b64.DecodeString(req.AwsIam.URL)
	rawHeaders, err2 := b64.DecodeString(req.AwsIam.Headers)
	body, err3 := b64.DecodeString(req.AwsIam.Body)
	var headers map[string]string
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(rawHeaders, &headers) != nil {
		return fail(http.StatusBadRequest, "Invalid awsIam request encoding")
	}
	amzDate := headers["X-Amz-Date"]
	if amzDate == "" {
		amzDate = headers["x-amz-date"]
	}
	if amzDate == "" {
		return fail(http.StatusBadRequest, "Missing X-Amz-Date header")
	}
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fail(http.StatusBadRequest, "Invalid X-Amz-Date header")
	}
	if req.Account.ID != s.AccountID(c.App, ServiceV2) {
		return fail(http.StatusNotFound, "Service account not found")
	}
	if skew := c.Now().Sub(signedAt); skew > c.SignatureTTL || -skew > c.SignatureTTL {
		return fail(http.StatusUnauthorized, "Signature expired")
	}
	cfg, _ := url.Parse(c.STSEndpoint)
	got, err := url.Parse(string(rawURL))
	hostHeader := firstHeader(headers, "Host")
	if err != nil || !strings.EqualFold(got.Host, cfg.Host) || (hostHeader != "" && !strings.EqualFold(hostHeader, cfg.Host)) {
		return http.StatusBadRequest, map[string]string{
			"error":            "STS endpoint mismatch. Please sign the request for the configured STS endpoint.",
			"expectedEndpoint": c.STSEndpoint,
			"receivedEndpoint": string(rawURL),
		}
	}
	arn, akid, ok := emulateSTS(c, req.AwsIam.Method, got, headers, body)
	if !ok {
		return fail(http.StatusUnauthorized, "AWS STS validation failed")
	}
	for _, p := range c.TrustedPrincipals {
		if p == "*" {
			return fail(http.StatusBadRequest, "Wildcard '*' trusted principal is not allowed")
		}
	}
	if !trusted(c, arn, akid) {
		return fail(http.StatusForbidden, "Untrusted principal")
	}
	ttl := c.DefaultTTL
	if req.TokenRequest != nil && req.TokenRequest.TTL != nil {
		ttl = *req.TokenRequest.TTL
	}
	if ttl <= 0 || ttl > c.MaxTTL {
		return fail(http.StatusBadRequest, "Requested TTL must be between 1 and "+strconv.Itoa(c.MaxTTL)+" seconds")
	}
	tok, err := s.MintToken(c.App, ServiceV2, time.Duration(ttl)*time.Second)
	if err != nil {
		return fail(http.StatusInternalServerError, "Internal server error.")
	}
	parts := strings.Split(tok, ":")
	l.mu.Lock()
	l.ok++
	l.lastKey, l.lastTTL = akid, ttl
	l.headers = l.headers[:0]
	for k := range headers {
		l.headers = append(l.headers, k)
	}
	sort.Strings(l.headers)
	l.mu.Unlock()
	return http.StatusOK, map[string]any{"authentication": map[string]any{
		"tokenType":   "ServiceAccount",
		"token":       tok,
		"bearerToken": "ServiceAccount " + parts[2],
		"TTL":         ttl,
		"maxTTL":      c.MaxTTL,
	}}
}

func firstHeader(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func trusted(c AWSIAM, arn, akid string) bool {
	if len(c.TrustedAccessKeys) > 0 {
		found := false
		for _, k := range c.TrustedAccessKeys {
			found = found || k == akid
		}
		if !found {
			return false
		}
	}
	if len(c.TrustedPrincipals) == 0 {
		return true
	}
	for _, p := range c.TrustedPrincipals {
		if fnmatch(p, arn) {
			return true
		}
	}
	return false
}

// fnmatch is Python's fnmatch for '*' and '?' (a '*' crosses '/', unlike
// path.Match), which is what Phase applies to trusted principals.
func fnmatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if fnmatch(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			s, pattern = s[1:], pattern[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			s, pattern = s[1:], pattern[1:]
		}
	}
	return s == ""
}

// emulateSTS answers what STS would: the caller's ARN and access key id,
// or !ok for a request STS would refuse. The method must be POST and the
// body the GetCallerIdentity form (Phase replays to the endpoint URL, so a
// query-string request cannot work).
func emulateSTS(c AWSIAM, method string, u *url.URL, headers map[string]string, body []byte) (arn, akid string, ok bool) {
	if method != http.MethodPost {
		return "", "", false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "GetCallerIdentity" || form.Get("Version") != "2011-06-15" {
		return "", "", false
	}
	auth := firstHeader(headers, "Authorization")
	cred, signed, sig, good := parseSigV4Authorization(auth)
	if !good {
		return "", "", false
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[3] != "sts" || scope[4] != "aws4_request" {
		return "", "", false
	}
	akid = scope[0]
	amzDate := firstHeader(headers, "X-Amz-Date")
	if !strings.HasPrefix(amzDate, scope[1]) {
		return "", "", false
	}
	names := strings.Split(signed, ";")
	if !sort.StringsAreSorted(names) || !contains(names, "host") || !contains(names, "x-amz-date") {
		return "", "", false
	}
	if len(c.Principals) == 0 {
		return "arn:aws:sts::123456789012:assumed-role/phasetest/" + akid, akid, true
	}
	for _, p := range c.Principals {
		if p.AccessKeyID != akid {
			continue
		}
		if p.SessionToken != "" && (firstHeader(headers, "X-Amz-Security-Token") != p.SessionToken || !contains(names, "x-amz-security-token")) {
			return "", "", false
		}
		want, err := sigV4Signature(p.SecretAccessKey, u, headers, body, names, amzDate, scope)
		if err != nil || !hmac.Equal([]byte(want), []byte(sig)) {
			return "", "", false
		}
		return p.ARN, akid, true
	}
	return "", "", false
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func parseSigV4Authorization(h string) (cred, signed, sig string, ok bool) {
	rest, found := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !found {
		return "", "", "", false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	return cred, signed, sig, cred != "" && signed != "" && sig != ""
}

// sigV4Signature recomputes the signature the way STS does on receipt: the
// host comes from the URL Phase replays to and content-length from the
// body, every other signed header from the client's map.
func sigV4Signature(secret string, u *url.URL, headers map[string]string, body []byte, names []string, amzDate string, scope []string) (string, error) {
	var b strings.Builder
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString("POST\n" + path + "\n" + u.RawQuery + "\n")
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = u.Host
		case "content-length":
			v = strconv.Itoa(len(body))
		default:
			v = strings.Join(strings.Fields(firstHeader(headers, n)), " ")
		}
		b.WriteString(n + ":" + v + "\n")
	}
	sum := sha256.Sum256(body)
	b.WriteString("\n" + strings.Join(names, ";") + "\n" + hex.EncodeToString(sum[:]))
	creqSum := sha256.Sum256([]byte(b.String()))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(creqSum[:])
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), scope[1])
	k = mac(k, scope[2])
	k = mac(k, scope[3])
	k = mac(k, scope[4])
	return hex.EncodeToString(mac(k, sts)), nil
}
