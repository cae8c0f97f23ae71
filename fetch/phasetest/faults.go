package phasetest

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint selects which requests a fault applies to.
type Endpoint string

// Endpoints. EndpointAny matches every request.
const (
	EndpointAny     Endpoint = ""
	EndpointTokens  Endpoint = "tokens"  // GET /service/secrets/tokens/
	EndpointSecrets Endpoint = "secrets" // any method on /service/secrets/
	EndpointOther   Endpoint = "other"   // routes added with Handle, unknown paths
)

// FaultKind is what goes wrong.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers Status with {"error": …}, plus Retry-After when set.
	FaultStatus FaultKind = iota
	// FaultSlowHeaders waits Delay before answering normally.
	FaultSlowHeaders
	// FaultSlowBody sends the headers and half of the body, waits Delay, then
	// sends the rest.
	FaultSlowBody
	// FaultTruncate sends a well-formed HTTP response whose JSON body is cut
	// in half.
	FaultTruncate
	// FaultReset announces the full Content-Length, sends half of the body
	// and closes the connection.
	FaultReset
	// FaultWrongContentType answers 200 with an HTML page (a captive portal,
	// a misconfigured proxy).
	FaultWrongContentType
	// FaultGarbageJSON answers 200 application/json with bytes that are not JSON.
	FaultGarbageJSON
	// FaultWrongShape answers 200 with valid JSON of the wrong shape.
	FaultWrongShape
)

// Fault is one injected failure. Faults are consumed in the order they were
// injected; each request meets at most one.
type Fault struct {
	Kind     FaultKind
	Endpoint Endpoint
	// Count is how many matching requests the fault affects; zero or less
	// means every matching request until ClearFaults.
	Count      int
	Status     int           // FaultStatus
	RetryAfter string        // FaultStatus: Retry-After value (seconds or an HTTP date)
	Delay      time.Duration // FaultSlowHeaders, FaultSlowBody
}

type faults struct {
	mu         sync.Mutex
	queue      []*Fault
	latHeaders time.Duration
	latBody    time.Duration
	// token bucket
	perMinute int
	burst     float64
	tokens    float64
	last      time.Time
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.queue = append(s.faults.queue, &f)
}

// ClearFaults removes every injected fault, the latency and the rate limit.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.queue = nil
	s.faults.latHeaders, s.faults.latBody = 0, 0
	s.faults.perMinute = 0
}

// FailFirst makes the next n requests fail with status.
func (s *Server) FailFirst(n, status int) {
	s.Inject(Fault{Kind: FaultStatus, Count: n, Status: status})
}

// TooManyRequests makes the next n requests answer 429 with the given
// Retry-After value ("" sends none; "2" or an HTTP date).
func (s *Server) TooManyRequests(n int, retryAfter string) {
	s.Inject(Fault{Kind: FaultStatus, Count: n, Status: http.StatusTooManyRequests, RetryAfter: retryAfter})
}

// SetLatency delays every answer: headers before the status line, body
// between the two halves of the body.
func (s *Server) SetLatency(headers, body time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.latHeaders, s.faults.latBody = headers, body
}

// SetRateLimit limits the server to perMinute requests a minute with a
// token bucket holding up to burst requests (burst ≤ 0: perMinute). Over
// the limit it answers 429 with Retry-After in whole seconds, like Phase
// Cloud. perMinute ≤ 0 removes the limit.
func (s *Server) SetRateLimit(perMinute, burst int) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if burst <= 0 {
		burst = perMinute
	}
	s.faults.perMinute = perMinute
	s.faults.burst = float64(burst)
	s.faults.tokens = float64(burst)
	s.faults.last = time.Now()
}

// take consumes one request from the bucket, or says how many seconds to wait.
func (f *faults) take() (retryAfter int, limited bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.perMinute <= 0 {
		return 0, false
	}
	now := time.Now()
	rate := float64(f.perMinute) / 60 // per second
	f.tokens = math.Min(f.burst, f.tokens+now.Sub(f.last).Seconds()*rate)
	f.last = now
	if f.tokens >= 1 {
		f.tokens--
		return 0, false
	}
	return int(math.Ceil((1 - f.tokens) / rate)), true
}

// next returns the fault for a request to ep, consuming one use of it.
func (f *faults) next(ep Endpoint) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.queue {
		if q.Endpoint != EndpointAny && q.Endpoint != ep {
			continue
		}
		out := *q
		if q.Count > 0 {
			q.Count--
			if q.Count == 0 {
				f.queue = append(f.queue[:i:i], f.queue[i+1:]...)
			}
		}
		return out, true
	}
	return Fault{}, false
}

func (f *faults) latency() (headers, body time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latHeaders, f.latBody
}

// TamperSecret makes the server serve the value of the secret called key
// (every path) with one ciphertext byte flipped: the ph:v1 format stays
// valid, authentication fails.
func (s *Server) TamperSecret(appName, envName, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupEnv(appName, envName)
	if err != nil {
		return err
	}
	found := false
	for _, sec := range e.secrets {
		k, err := s.decryptString(e, sec.keyCT)
		if err == nil && k == key && !sec.deleted {
			sec.tampered = true
			found = true
		}
	}
	if !found {
		return errNotFound("secret " + strconv.Quote(key))
	}
	return nil
}

// ExpireToken makes the server reject tok as expired from now on.
func (s *Server) ExpireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.str == tok {
			t.revoked = true
		}
	}
}

// Counts are request counters since start (or ResetCounts).
type Counts struct {
	Total         int64
	Tokens        int64 // GET /secrets/tokens/
	SecretsGet    int64
	SecretsPost   int64
	SecretsPut    int64
	SecretsDelete int64
	Other         int64 // anything else, including Handle routes and other methods
	Faulted       int64 // answered by an injected fault
	RateLimited   int64 // answered 429 by the rate limit
}

type counters struct {
	total, tokens, get, post, put, del, other, faulted, limited atomic.Int64
}

func (c *counters) count(ep Endpoint, method string) {
	c.total.Add(1)
	switch {
	case ep == EndpointTokens && method == http.MethodGet:
		c.tokens.Add(1)
	case ep == EndpointSecrets && method == http.MethodGet:
		c.get.Add(1)
	case ep == EndpointSecrets && method == http.MethodPost:
		c.post.Add(1)
	case ep == EndpointSecrets && method == http.MethodPut:
		c.put.Add(1)
	case ep == EndpointSecrets && method == http.MethodDelete:
		c.del.Add(1)
	default:
		c.other.Add(1)
	}
}

// Requests returns the request counters.
func (s *Server) Requests() Counts {
	c := &s.ctr
	return Counts{Total: c.total.Load(), Tokens: c.tokens.Load(), SecretsGet: c.get.Load(),
		SecretsPost: c.post.Load(), SecretsPut: c.put.Load(), SecretsDelete: c.del.Load(),
		Other: c.other.Load(), Faulted: c.faulted.Load(), RateLimited: c.limited.Load()}
}

// ResetCounts zeroes the request counters (not the lease counter).
func (s *Server) ResetCounts() {
	c := &s.ctr
	for _, a := range []*atomic.Int64{&c.total, &c.tokens, &c.get, &c.post, &c.put, &c.del, &c.other, &c.faulted, &c.limited} {
		a.Store(0)
	}
}

// LeasesCreated counts dynamic-secret leases minted so far.
func (s *Server) LeasesCreated() int64 { return s.leases.Load() }

// Request is one logged request. Authorization is reduced to its type
// ("Bearer Service …"), so a log can be printed.
type Request struct {
	Method, Path string
	Endpoint     Endpoint
	Header       http.Header
	Time         time.Time
}

type requestLog struct {
	mu   sync.Mutex
	reqs []Request
}

const maxLog = 10000

func (l *requestLog) add(r *http.Request, ep Endpoint) {
	h := r.Header.Clone()
	if a := h.Get("Authorization"); a != "" {
		parts := strings.SplitN(a, " ", 3)
		if len(parts) == 3 {
			parts[2] = "…"
		}
		h.Set("Authorization", strings.Join(parts, " "))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) >= maxLog {
		l.reqs = l.reqs[1:]
	}
	l.reqs = append(l.reqs, Request{Method: r.Method, Path: r.URL.Path, Endpoint: ep, Header: h, Time: time.Now()})
}

// Log returns the last requests (at most 10000), oldest first.
func (s *Server) Log() []Request {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return append([]Request(nil), s.log.reqs...)
}
