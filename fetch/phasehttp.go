package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// DefaultPhaseHost is Phase Cloud's console origin.
const DefaultPhaseHost = "https://console.phase.dev"

// Retry defaults. The overall deadline is the caller's context; these only
// bound the loop when the context has none.
const (
	defaultMaxAttempts    = 8
	defaultAttemptTimeout = 10 * time.Second
	defaultRetryBase      = 250 * time.Millisecond
	defaultRetryMax       = 8 * time.Second
	// Phase answers are a few hundred bytes per secret; anything near this
	// is a broken or hostile server, not a big organisation.
	maxResponseBytes = 64 << 20
)

// NewHTTPClient builds the client FetchPhase uses when PhaseOptions.HTTPClient
// is nil: roots from the system (or SSL_CERT_FILE, or the embedded fallback
// on an image without a bundle) plus CAFile, certificate checks off only when
// InsecureSkipVerify is set, and proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY in
// every case. Redirects are followed by net/http's rules, which drop the
// Authorization header when the host changes.
func NewHTTPClient(o PhaseOptions) (*http.Client, error) {
	// A plain-http host with no proxy never verifies a certificate, so it
	// need not pay for loading any roots (local development, the emulator).
	if !strings.HasPrefix(strings.ToLower(o.Host), "http://") || proxyConfigured() {
		UseFallbackRoots()
	}
	tr, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		tr = tr.Clone()
	} else {
		// Someone replaced the default transport; start from Go's defaults.
		tr = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	}
	tr.Proxy = http.ProxyFromEnvironment
	tr.MaxIdleConnsPerHost = 4
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot read the CA file: %w", ErrConfig, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			// Only reachable on platforms without any pool; the CA file
			// alone is then the trust store.
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrConfig, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

var fallbackOnce sync.Once

// UseFallbackRoots registers the Mozilla roots embedded in the binary as
// crypto/x509's fallback. Scratch and distroless images have no CA bundle;
// Go uses the fallback only when the system pool is empty or missing, and
// SSL_CERT_FILE (read natively by crypto/x509 on Unix) still takes
// precedence. Parsing ~150 certificates costs 1.5-4 ms and 650 KB, so it
// happens when the first HTTPS client is built, not at program start as
// the x509roots/fallback package's init would do on every run (version and
// --env-file-only runs included). Safe to call any number of times.
func UseFallbackRoots() {
	fallbackOnce.Do(func() {
		// With a system bundle Go never consults the fallback, so parsing
		// it would be wasted; the system pool loaded here is cached by
		// crypto/x509 and is the one the handshake verifies against anyway.
		if sys, err := x509.SystemCertPool(); err == nil && !sys.Equal(x509.NewCertPool()) &&
			!strings.Contains(os.Getenv("GODEBUG"), "x509usefallbackroots=1") {
			return
		}
		pool := x509.NewCertPool()
		for r := range bundle.Roots() {
			cert, err := x509.ParseCertificate(r.Certificate)
			if err != nil {
				// The bundle is tested upstream; a root that does not parse
				// is one fewer fallback root, not a reason to stop.
				continue
			}
			if r.Constraint == nil {
				pool.AddCert(cert)
			} else {
				pool.AddCertWithConstraint(cert, r.Constraint)
			}
		}
		// SetFallbackRoots panics when called twice: if a package linked in
		// (the fallback package's own init) registered roots first, those
		// stand.
		defer func() { _ = recover() }()
		x509.SetFallbackRoots(pool)
	})
}

// proxyConfigured reports whether http.ProxyFromEnvironment may send a
// request through a proxy, which may be reached over HTTPS.
func proxyConfigured() bool {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

// apiBase turns the configured host into the prefix the endpoint paths are
// appended to. The Phase clients concatenate host + "/service/…" verbatim;
// we do the same (a path prefix for a self-hosted console behind a reverse
// proxy keeps working) but trim one trailing slash, so "https://x/" does not
// produce "//service/…".
func apiBase(host string) (string, error) {
	if host == "" {
		host = DefaultPhaseHost
	}
	base := strings.TrimSuffix(host, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: host %s is not an http(s) URL such as %s", ErrConfig, describeHost(host), DefaultPhaseHost)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: host %q must be an origin (no credentials, query or fragment)", ErrConfig, redactURL(u))
	}
	return base, nil
}

// describeHost quotes a host that failed to parse, unless it could be a
// credential pasted into the wrong variable (PHASE_HOST and
// PHASE_SERVICE_TOKEN swapped): a token must not reach the error.
func describeHost(host string) string {
	if strings.Contains(host, "pss_") || strings.Contains(host, "ph:v1:") || len(host) > 200 {
		return fmt.Sprintf("(%d characters, not shown: it looks like a token)", len(host))
	}
	return strconv.Quote(cleanText(host, 200))
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.Fragment = "", ""
	return c.String()
}

// apiClient performs Phase API requests with retries. It is used by one
// FetchPhase call, sequentially, so its counters need no locking.
type apiClient struct {
	http      *http.Client
	base      string
	auth      string
	userAgent string
	debugf    func(string, ...any)

	maxAttempts    int
	attemptTimeout time.Duration
	retryBase      time.Duration
	retryMax       time.Duration
	sleep          func(context.Context, time.Duration) error

	requests int // logical requests (one per endpoint call)
	attempts int // HTTP attempts, retries included
}

// apiError is the result of one attempt; retry tells the loop whether
// another attempt could succeed.
type apiError struct {
	class      error // ErrAuth, ErrUnavailable, ...
	msg        string
	retry      bool
	retryAfter time.Duration // from Retry-After, 0 when absent
	// notProcessed: the server certainly did not act on the request (no
	// connection, or a 429 refusal), so even a request with side effects
	// may be sent again.
	notProcessed bool
	// denied: the server answered 401, 403 or 404 about this token or
	// context (not a local problem, not an outage).
	denied bool
	cause  error
}

func (e *apiError) Error() string { return e.msg }

// deniedError marks an error that is the server's own answer that this
// token may not read this context: 401, 403, 404, or an application or
// environment the token's listing does not hold. The cache deletes its
// entry on exactly these; a local problem (a bad .phase.json, a damaged
// token, a key share that does not open) leaves it alone. The message and
// the error class are those of the wrapped error.
type deniedError struct{ err error }

func (e *deniedError) Error() string { return e.err.Error() }
func (e *deniedError) Unwrap() error { return e.err }

// serverDenied reports whether err is, or wraps, a deniedError.
func serverDenied(err error) bool {
	var d *deniedError
	return errors.As(err, &d)
}

// get performs GET base+path with the given headers and returns the body of
// a 2xx answer. what names the request in errors ("tokens", "secrets").
// sideEffects marks a request that changes server state (one that creates
// dynamic-secret leases): it is retried only when the server certainly did
// not process the failed attempt, so a retry cannot mint a second lease.
func (c *apiClient) get(ctx context.Context, path string, headers [][2]string, what string, sideEffects bool) ([]byte, error) {
	c.requests++
	var last *apiError
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, c.giveUp(what, attempt-1, last, err)
		}
		c.attempts++
		start := time.Now()
		body, aerr := c.once(ctx, path, headers, sideEffects)
		if aerr == nil {
			c.debugf("phase: GET %s: ok in %s (attempt %d)", path, time.Since(start).Round(time.Millisecond), attempt)
			return body, nil
		}
		c.debugf("phase: GET %s: attempt %d failed after %s: %s", path, attempt, time.Since(start).Round(time.Millisecond), aerr.msg)
		last = aerr
		if !aerr.retry {
			err := fmt.Errorf("%w: %s request: %s", aerr.class, what, aerr.msg)
			if aerr.denied {
				err = &deniedError{err}
			}
			return nil, err
		}
		if sideEffects && !aerr.notProcessed {
			return nil, fmt.Errorf("%w: %s request: %s (not retried: the request creates leases and may have been processed)", aerr.class, what, aerr.msg)
		}
		if attempt >= c.attemptLimit(ctx) {
			return nil, c.giveUp(what, attempt, last, nil)
		}
		wait := c.backoff(attempt, aerr.retryAfter)
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				// Past the deadline before its timer has cancelled ctx:
				// say so, rather than blame a Retry-After the server may
				// not have sent.
				return nil, c.giveUp(what, attempt, last, context.DeadlineExceeded)
			}
			if aerr.retryAfter > left {
				// Waiting as asked would end past the deadline; coming back
				// early would only earn another 429. Fail now.
				return nil, fmt.Errorf("%w: %s request: %s; the server asks to retry after %s, beyond the deadline (%d attempts)",
					ErrUnavailable, what, aerr.msg, aerr.retryAfter.Round(time.Second), attempt)
			}
			if wait > left {
				// Keep half of what is left for the attempt itself.
				wait = max(aerr.retryAfter, left/2)
			}
		}
		c.debugf("phase: GET %s: retrying in %s", path, wait.Round(time.Millisecond))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, c.giveUp(what, attempt, last, err)
		}
	}
}

// attemptLimit is MaxAttempts when set. Otherwise the deadline alone
// bounds retries: a fleet starting into a rate limit must keep trying
// while --timeout allows (with a fixed cap, processes whose first request
// got through gave up on the second long before the deadline, and the
// server's budget went to half-done starts). Without a deadline the
// default cap keeps the loop finite.
func (c *apiClient) attemptLimit(ctx context.Context) int {
	if c.maxAttempts > 0 {
		return c.maxAttempts
	}
	if _, ok := ctx.Deadline(); ok {
		return math.MaxInt
	}
	return defaultMaxAttempts
}

func (c *apiClient) giveUp(what string, attempts int, last *apiError, ctxErr error) error {
	msg := "no attempt was made"
	if last != nil {
		msg = last.msg
	}
	if ctxErr != nil {
		return fmt.Errorf("%w: %s request: deadline reached after %d attempts (last: %s): %w", ErrUnavailable, what, attempts, msg, ctxErr)
	}
	return fmt.Errorf("%w: %s request: giving up after %d attempts: %s", ErrUnavailable, what, attempts, msg)
}

// backoff is exponential backoff with full jitter: a uniform delay in
// [0, min(max, base·2^(attempt-1))). A Retry-After is honoured as a floor and
// the jitter is added on top, so a fleet told "retry after 30s" does not come
// back in the same second.
func (c *apiClient) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := c.retryMax
	if attempt < 31 {
		if d := c.retryBase << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	jitter := time.Duration(rand.Int64N(int64(ceil) + 1))
	return retryAfter + jitter
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// once is a single attempt under its own timeout (never beyond the caller's
// deadline). The body is always read to the end and closed so the
// connection goes back to the pool for the next request.
func (c *apiClient) once(ctx context.Context, path string, headers [][2]string, sideEffects bool) ([]byte, *apiError) {
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	var written atomic.Bool
	if sideEffects {
		// net/http silently sends a GET again when its kept-alive
		// connection dies before the first byte of the answer — after the
		// server may have acted on it. For a request that creates leases
		// that is a second set of credentials. A body the transport cannot
		// rewind makes the request non-replayable (an empty one: nothing
		// extra goes on the wire), and the trace records whether the
		// request left at all, so one that never did is still retried by
		// our loop.
		actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					written.Store(true)
				}
			},
		})
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, &apiError{class: ErrConfig, msg: "cannot build the request: " + err.Error()}
	}
	if sideEffects {
		req.Body = io.NopCloser(strings.NewReader(""))
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		e := transportError(ctx, actx, err)
		if sideEffects && !written.Load() {
			e.notProcessed = true
		}
		return nil, e
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		// A reset or stall mid-body: the server (or a proxy) failed, the
		// next attempt may not.
		e := transportError(ctx, actx, err)
		e.msg = fmt.Sprintf("HTTP %d, reading the body: %s", resp.StatusCode, e.msg)
		return nil, e
	}
	if len(body) > maxResponseBytes {
		return nil, &apiError{class: ErrProtocol, msg: fmt.Sprintf("response larger than %d bytes", maxResponseBytes)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The content type is not required to be JSON (minimal proxies and
		// test servers omit it; the decoder judges the body), but an HTML
		// page is worth naming: a captive portal or a login proxy.
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" || mt == "application/xhtml+xml" {
			return nil, &apiError{class: ErrProtocol, msg: fmt.Sprintf("HTTP %d with content type %q, not JSON (a proxy or captive portal?)", resp.StatusCode, mt)}
		}
		return body, nil
	}
	return nil, statusError(resp, body)
}

// readBody reads at most maxResponseBytes+1 bytes. With a Content-Length
// (net/http holds the server to it) the buffer is allocated once, instead
// of io.ReadAll's doubling, which for a large answer leaves copies of it
// for the collector at the moment decryption needs memory most.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	lr := io.LimitReader(r, maxResponseBytes+1)
	if contentLength <= 0 || contentLength > maxResponseBytes {
		return io.ReadAll(lr)
	}
	// MinRead spare bytes: ReadFrom grows the buffer (doubling it) when
	// less than that is free, even for the final read that only sees EOF.
	buf := bytes.NewBuffer(make([]byte, 0, contentLength+bytes.MinRead))
	_, err := buf.ReadFrom(lr)
	return buf.Bytes(), err
}

// transportError classifies a failure below HTTP. Certificate problems are
// not retried: they are configuration (or an attack), not an outage.
func transportError(parent, attempt context.Context, err error) *apiError {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		tlsRecord tls.RecordHeaderError
		verifyErr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &verifyErr) && errors.As(verifyErr.Err, &unknownCA):
		return &apiError{class: ErrUnavailable, msg: "TLS: certificate signed by an unknown authority (use --ca-file or SSL_CERT_FILE for a private CA)", cause: err}
	case errors.As(err, &hostErr):
		return &apiError{class: ErrUnavailable, msg: "TLS: certificate is not valid for this host", cause: err}
	case errors.As(err, &certErr), errors.As(err, &verifyErr):
		return &apiError{class: ErrUnavailable, msg: "TLS: certificate rejected: " + certReason(err), cause: err}
	case errors.As(err, &tlsRecord):
		return &apiError{class: ErrUnavailable, msg: "TLS handshake failed: the server does not speak TLS (http:// host?)", cause: err}
	}
	if parent.Err() != nil {
		return &apiError{class: ErrUnavailable, msg: "deadline reached", cause: err}
	}
	if attempt.Err() != nil {
		return &apiError{class: ErrUnavailable, msg: "attempt timed out", retry: true, cause: err}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &apiError{class: ErrUnavailable, msg: "DNS lookup failed: " + dnsErr.Err, retry: true, notProcessed: true, cause: err}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &apiError{class: ErrUnavailable, msg: "network: " + opErr.Op + ": " + innermost(opErr), retry: true, notProcessed: opErr.Op == "dial", cause: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &apiError{class: ErrUnavailable, msg: "connection closed early", retry: true, cause: err}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return &apiError{class: ErrUnavailable, msg: innermost(uerr), retry: true, cause: err}
	}
	return &apiError{class: ErrUnavailable, msg: err.Error(), retry: true, cause: err}
}

func certReason(err error) string {
	var certErr x509.CertificateInvalidError
	if errors.As(err, &certErr) {
		return certErr.Error()
	}
	return "verification failed"
}

// innermost is the deepest error message: url.Error and OpError repeat the
// full URL, which is noise in a one-line report.
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// statusError maps a non-2xx answer. 401/403 carry the server's reason;
// 429, 408 and 5xx may succeed later; 400 and 404 never will.
func statusError(resp *http.Response, body []byte) *apiError {
	code := resp.StatusCode
	detail := serverMessage(body)
	msg := "HTTP " + strconv.Itoa(code)
	if detail != "" {
		msg += ": " + detail
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &apiError{class: ErrAuth, msg: msg, denied: true}
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return &apiError{class: ErrUnavailable, msg: msg, retry: true, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			notProcessed: code == http.StatusTooManyRequests}
	case code == http.StatusNotFound:
		return &apiError{class: ErrConfig, msg: msg + " (is the host a Phase console origin?)", denied: true}
	default:
		return &apiError{class: ErrProtocol, msg: msg}
	}
}

// parseRetryAfter reads delta-seconds or an HTTP date. Garbage and past
// dates count as absent. Values are capped at an hour: the deadline decides
// anyway, and a huge number must not overflow.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 3600 {
			n = 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, time.Hour)
	}
	return 0
}

// serverMessage extracts Phase's {"error": "..."} (or DRF's "detail") from
// an error body, cleaned for a log line. Raw non-JSON bodies are not
// echoed: a proxy page is noise, and the body of an unexpected answer is
// not ours to print.
func serverMessage(body []byte) string {
	var m struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	for _, raw := range []json.RawMessage{m.Error, m.Detail} {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return cleanText(s, 200)
		}
	}
	return ""
}

// cleanText makes server-provided text safe for a one-line log: control
// characters become spaces, and it is cut to n runes.
func cleanText(s string, n int) string {
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i == n {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		b.WriteRune(r)
		i++
	}
	return strings.TrimSpace(b.String())
}
