// Package awstest holds loopback fakes of the AWS endpoints the shim reads
// credentials from: the ECS agent (relative URI), a container full-URI agent
// such as EKS Pod Identity (with its Authorization token), EC2 IMDSv2 and STS
// AssumeRoleWithWebIdentity. It also provides a dialer that refuses every
// address outside loopback, so a test can prove it never reached AWS.
//
// For tests only; the binary never imports it.
package awstest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Creds is what a fake hands out. Tests give each provider a distinct
// AccessKeyID so the Phase emulator's trust check can tell them apart.
type Creds struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time // zero: one hour from the request
}

func (c Creds) expiration() string {
	if c.Expiration.IsZero() {
		return time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	}
	return c.Expiration.UTC().Format(time.RFC3339)
}

// counter is embedded in each fake: total requests, and a switch to answer
// every request with an error status (fault injection).
type counter struct {
	n      atomic.Int64
	status atomic.Int64
}

// Requests is how many requests reached the fake.
func (c *counter) Requests() int { return int(c.n.Load()) }

// FailWith makes every following request answer status (0 turns it off).
func (c *counter) FailWith(status int) { c.status.Store(int64(status)) }

// hit counts the request and answers the injected failure if any.
func (c *counter) hit(w http.ResponseWriter) bool {
	c.n.Add(1)
	if s := int(c.status.Load()); s != 0 {
		writeJSON(w, s, map[string]string{"code": "InjectedFault", "message": "fault injected by the test"})
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cleaner is the part of testing.TB (or a testscript Env's Defer) the
// constructors need: a way to stop the server when the test ends.
type cleaner func(func())

func newServer(cleanup cleaner, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	cleanup(s.Close)
	return s
}

// ---------------------------------------------------------------------------

// Container fakes the ECS agent and full-URI agents (EKS Pod Identity). It
// serves the credentials document at Path; when Token is set every request
// must carry exactly that Authorization value.
type Container struct {
	counter
	URL   string // base URL, e.g. http://127.0.0.1:PORT
	Path  string // e.g. /v2/credentials/<uuid>
	Token string
	Creds Creds

	mu       sync.Mutex
	lastAuth string
}

// NewContainer starts a container credentials fake on loopback, stopped
// when the test ends.
func NewContainer(tb testing.TB, path, token string, c Creds) *Container {
	return StartContainer(tb.Cleanup, path, token, c)
}

// StartContainer is NewContainer for callers without a testing.TB
// (testscript's Env.Defer): cleanup receives the function that stops it.
func StartContainer(cleanup func(func()), path, token string, c Creds) *Container {
	f := &Container{Path: path, Token: token, Creds: c}
	f.URL = newServer(cleanup, http.HandlerFunc(f.serve)).URL
	return f
}

// FullURI is the AWS_CONTAINER_CREDENTIALS_FULL_URI value for this fake.
func (f *Container) FullURI() string { return f.URL + f.Path }

// HostPort is the fake's address, for the test-only ECS host override.
func (f *Container) HostPort() string { return strings.TrimPrefix(f.URL, "http://") }

// LastAuthorization reports whether the last request carried an
// Authorization header and whether it matched Token, without exposing it.
func (f *Container) LastAuthorization() (present, matched bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastAuth != "", f.Token != "" && f.lastAuth == f.Token
}

func (f *Container) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lastAuth = r.Header.Get("Authorization")
	f.mu.Unlock()
	if f.hit(w) {
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != f.Path {
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "NotFound", "message": "no credentials at this path"})
		return
	}
	if f.Token != "" && r.Header.Get("Authorization") != f.Token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "AccessDenied", "message": "authorization token missing or wrong"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"AccessKeyId":     f.Creds.AccessKeyID,
		"SecretAccessKey": f.Creds.SecretAccessKey,
		"Token":           f.Creds.SessionToken,
		"Expiration":      f.Creds.expiration(),
		"RoleArn":         "arn:aws:iam::123456789012:role/fake-task-role",
	})
}

// ---------------------------------------------------------------------------

// IMDS fakes EC2 IMDSv2. Tokens must be fetched with PUT and a TTL header
// (1..21600, as EC2 enforces); GETs without a valid token get 401. An empty
// Role means the instance has no profile (404 on the listing).
type IMDS struct {
	counter
	URL   string
	Role  string
	Creds Creds

	mu       sync.Mutex
	tokens   map[string]bool
	next     int
	lastTTL  string
	puts     int
	unauthed int
}

// NewIMDS starts an IMDSv2 fake on loopback, stopped when the test ends.
func NewIMDS(tb testing.TB, role string, c Creds) *IMDS { return StartIMDS(tb.Cleanup, role, c) }

// StartIMDS is NewIMDS for callers without a testing.TB.
func StartIMDS(cleanup func(func()), role string, c Creds) *IMDS {
	f := &IMDS{Role: role, Creds: c, tokens: map[string]bool{}}
	f.URL = newServer(cleanup, http.HandlerFunc(f.serve)).URL
	return f
}

// TokenRequests returns how many session tokens were issued, the TTL header
// of the last token request, and how many GETs came without a valid token.
func (f *IMDS) TokenRequests() (issued int, lastTTL string, unauthorized int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.lastTTL, f.unauthed
}

func (f *IMDS) serve(w http.ResponseWriter, r *http.Request) {
	if f.hit(w) {
		return
	}
	const credsPrefix = "/latest/meta-data/iam/security-credentials/"
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		n, err := strconv.Atoi(ttl)
		if err != nil || n < 1 || n > 21600 {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.next++
		tok := fmt.Sprintf("imds-session-%d", f.next)
		f.tokens[tok] = true
		f.lastTTL = ttl
		f.puts++
		f.mu.Unlock()
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		_, _ = w.Write([]byte(tok))
		return
	}
	f.mu.Lock()
	ok := f.tokens[r.Header.Get("X-aws-ec2-metadata-token")]
	if !ok {
		f.unauthed++
	}
	f.mu.Unlock()
	if !ok {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, credsPrefix) {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	switch name := strings.TrimPrefix(r.URL.Path, credsPrefix); {
	case f.Role == "":
		http.Error(w, "", http.StatusNotFound)
	case name == "":
		_, _ = w.Write([]byte(f.Role))
	case name == f.Role:
		writeJSON(w, http.StatusOK, map[string]string{
			"Code":            "Success",
			"LastUpdated":     time.Now().UTC().Format(time.RFC3339),
			"Type":            "AWS-HMAC",
			"AccessKeyId":     f.Creds.AccessKeyID,
			"SecretAccessKey": f.Creds.SecretAccessKey,
			"Token":           f.Creds.SessionToken,
			"Expiration":      f.Creds.expiration(),
		})
	default:
		http.Error(w, "", http.StatusNotFound)
	}
}

// ---------------------------------------------------------------------------

// STS fakes AssumeRoleWithWebIdentity: the form must name RoleArn and carry
// WebIdentityToken equal to JWT, else the XML error STS would send.
type STS struct {
	counter
	URL     string
	RoleArn string
	JWT     string
	Creds   Creds

	mu          sync.Mutex
	lastSession string
}

// NewSTS starts an STS fake on loopback, stopped when the test ends.
func NewSTS(tb testing.TB, roleArn, jwt string, c Creds) *STS {
	return StartSTS(tb.Cleanup, roleArn, jwt, c)
}

// StartSTS is NewSTS for callers without a testing.TB.
func StartSTS(cleanup func(func()), roleArn, jwt string, c Creds) *STS {
	f := &STS{RoleArn: roleArn, JWT: jwt, Creds: c}
	f.URL = newServer(cleanup, http.HandlerFunc(f.serve)).URL
	return f
}

// LastSessionName is the RoleSessionName of the last good request.
func (f *STS) LastSessionName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSession
}

func stsFault(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, code, msg)
}

func (f *STS) serve(w http.ResponseWriter, r *http.Request) {
	f.n.Add(1)
	if s := int(f.status.Load()); s != 0 {
		stsFault(w, s, "InjectedFault", "fault injected by the test")
		return
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		stsFault(w, http.StatusBadRequest, "InvalidAction", "expected a form POST")
		return
	}
	// Unsigned by design: the JWT is the credential.
	if r.Header.Get("Authorization") != "" {
		stsFault(w, http.StatusBadRequest, "InvalidParameterValue", "AssumeRoleWithWebIdentity must not be signed")
		return
	}
	switch {
	case r.PostForm.Get("Action") != "AssumeRoleWithWebIdentity" || r.PostForm.Get("Version") != "2011-06-15":
		stsFault(w, http.StatusBadRequest, "InvalidAction", "unknown action or version")
		return
	case r.PostForm.Get("RoleArn") != f.RoleArn:
		stsFault(w, http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
		return
	case r.PostForm.Get("WebIdentityToken") != f.JWT:
		stsFault(w, http.StatusBadRequest, "InvalidIdentityToken", "The web identity token that was passed could not be validated by AWS.")
		return
	case r.PostForm.Get("RoleSessionName") == "":
		stsFault(w, http.StatusBadRequest, "ValidationError", "RoleSessionName is required")
		return
	}
	f.mu.Lock()
	f.lastSession = r.PostForm.Get("RoleSessionName")
	f.mu.Unlock()
	type credsXML struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type result struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
		Result  struct {
			Credentials     credsXML `xml:"Credentials"`
			SubjectFromWIT  string   `xml:"SubjectFromWebIdentityToken"`
			AssumedRoleUser struct {
				Arn string `xml:"Arn"`
			} `xml:"AssumedRoleUser"`
		} `xml:"AssumeRoleWithWebIdentityResult"`
	}
	var out result
	out.Result.Credentials = credsXML{f.Creds.AccessKeyID, f.Creds.SecretAccessKey, f.Creds.SessionToken, f.Creds.expiration()}
	out.Result.SubjectFromWIT = "system:serviceaccount:default:app"
	out.Result.AssumedRoleUser.Arn = "arn:aws:sts::123456789012:assumed-role/fake-irsa-role/" + f.lastSession
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(out)
}

// ---------------------------------------------------------------------------

// LoopbackDial returns a DialContext that connects only to loopback
// addresses (127.0.0.0/8, ::1, "localhost") and reports any other attempt
// as a test error before refusing it. No name is resolved: a hostname other
// than localhost is already a violation.
func LoopbackDial(tb testing.TB) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			tb.Errorf("dial of malformed address %q refused", addr)
			return nil, err
		}
		ip := net.ParseIP(host)
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			tb.Errorf("test tried to dial non-loopback address %s; refused", addr)
			return nil, fmt.Errorf("awstest: dial to %s refused: tests stay on loopback", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// LoopbackClient is an http.Client whose every connection goes through
// LoopbackDial, with proxies ignored.
func LoopbackClient(tb testing.TB) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: LoopbackDial(tb), Proxy: nil},
		Timeout:   10 * time.Second,
	}
}
