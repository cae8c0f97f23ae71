package awsiam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/phase-shim/phase-shim/fetch"
)

// dialContext is the one place this package opens connections for the
// clients it builds itself. Tests replace it with a dialer that refuses any
// address outside loopback, which proves no test reaches AWS.
var dialContext = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext

// Timeouts. The metadata endpoints answer from the same host or the local
// link within milliseconds when they exist; when they do not (Fargate has no
// IMDS, a laptop has neither), a dropped SYN must not stall a container start
// for the default TCP timeout.
const (
	imdsDialTimeout    = 250 * time.Millisecond // the SDK's value
	imdsRequestTimeout = time.Second
	imdsAttempts       = 2 // for the role and credential reads; the token PUT is tried once

	containerDialTimeout    = time.Second
	containerRequestTimeout = 2 * time.Second
	containerAttempts       = 3

	stsDialTimeout    = 3 * time.Second
	stsRequestTimeout = 10 * time.Second
	stsAttempts       = 3

	phaseRequestTimeout = 20 * time.Second // the Python CLI's value for this call
	phaseAttempts       = 3
	maxRetryAfter       = 10 * time.Second

	maxBody = 1 << 20
)

// newClient builds a client for one kind of endpoint. Link-local and
// loopback endpoints bypass proxies: a corporate HTTPS_PROXY cannot reach the
// task's 169.254.170.2, and sending the credential request to it would leak
// the authorization token.
func newClient(dialTimeout, requestTimeout time.Duration, useProxy bool) *http.Client {
	// STS and https credential endpoints need CA roots on a scratch image too.
	fetch.UseFallbackRoots()
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return dialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		MaxIdleConnsPerHost:   2,
		ForceAttemptHTTP2:     true,
	}
	if useProxy {
		t.Proxy = http.ProxyFromEnvironment
	}
	return &http.Client{
		Transport: t,
		Timeout:   requestTimeout,
		// Credentials and tokens travel in headers; a redirect could carry
		// them to a host nobody vetted.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// response is a fully read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errNetwork marks a failure to get any HTTP answer at all.
var errNetwork = errors.New("no answer")

// do sends the request built by build up to attempts times, retrying network
// errors and the statuses retry accepts. build is called per attempt so a
// body (and a signature) can be fresh. The last answer is returned whatever
// its status; an error means no answer arrived (it wraps errNetwork) or ctx
// ended.
func do(ctx context.Context, c *http.Client, attempts int, retry func(status int) bool, build func() (*http.Request, error)) (response, error) {
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := sleep(ctx, backoff(i)); err != nil {
				return response{}, fmt.Errorf("%w: %v (after %v)", errNetwork, err, lastErr)
			}
		}
		req, err := build()
		if err != nil {
			return response{}, err
		}
		resp, err := c.Do(req.WithContext(ctx))
		if err != nil {
			lastErr = describeNetErr(err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			lastErr = describeNetErr(err)
			continue
		}
		r := response{status: resp.StatusCode, header: resp.Header, body: body}
		if i+1 < attempts && retry != nil && retry(r.status) {
			if d, ok := retryAfter(r.header); ok {
				if err := sleep(ctx, d); err != nil {
					return r, nil
				}
			}
			continue
		}
		return r, nil
	}
	return response{}, fmt.Errorf("%w: %v", errNetwork, lastErr)
}

// describeNetErr strips the URL that *url.Error carries: a relative ECS
// credentials path is itself a bearer capability on the task's network.
func describeNetErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}

func retryServerErrors(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

func backoff(attempt int) time.Duration {
	base := 100 * time.Millisecond << (attempt - 1)
	return base + rand.N(base/2+1)
}

func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// classifyNetwork turns a transport failure into fetch.ErrUnavailable, or
// passes ctx's own error through as unavailable too (the start deadline hit).
// Errors that are not about the network (a bad URL, an unreadable token
// file) already carry their class and pass through unchanged.
func classifyNetwork(what string, err error) error {
	if !errors.Is(err, errNetwork) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", fetch.ErrUnavailable, what, err)
}

// serverMessage pulls a human message out of an error body in the shapes the
// endpoints use ({"error":…}, {"detail":…}, {"message":…}, {"code","message"})
// and keeps it short and printable. These bodies never carry credentials.
func serverMessage(body []byte, parsed map[string]any) string {
	var parts []string
	for _, k := range []string{"code", "Code", "error", "detail", "message", "Message"} {
		if s, ok := parsed[k].(string); ok && s != "" {
			parts = append(parts, s)
		}
	}
	msg := strings.Join(parts, ": ")
	if msg == "" && len(parsed) == 0 {
		msg = string(body)
	}
	return printable(msg, 300)
}

// printable keeps at most n runes of s and drops control characters, so a
// hostile server cannot paint the operator's terminal or split log lines.
func printable(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range strings.TrimSpace(s) {
		if count == n {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
