package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Front stands in front of the Phase emulator (fetch/phasetest) for
// benchmarks: it counts requests, injects latency and answers a GET it has
// seen before from a cache. phasetest encodes its JSON anew on every
// request (a third of a second for 10,000 secrets on this machine); on a
// 2-core machine that work would compete with the client being measured,
// while a real Phase server runs elsewhere. Only 200 answers are cached.
type Front struct {
	inner   http.Handler
	latency atomic.Int64 // nanoseconds

	total, tokens, secrets, other, hits atomic.Int64

	mu    sync.Mutex
	cache map[string]*recorded
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

// Counts are Front's request counters.
type Counts struct {
	Total      int64
	Tokens     int64 // GET /service/secrets/tokens/
	SecretsGet int64 // GET /service/secrets/
	Other      int64
	CacheHits  int64
}

// NewFront wraps an emulator (a *phasetest.Server is an http.Handler).
func NewFront(inner http.Handler) *Front {
	return &Front{inner: inner, cache: map[string]*recorded{}}
}

// SetLatency delays every answer by d before its headers.
func (f *Front) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// Counts returns the counters since the start or the last Reset.
func (f *Front) Counts() Counts {
	return Counts{Total: f.total.Load(), Tokens: f.tokens.Load(), SecretsGet: f.secrets.Load(),
		Other: f.other.Load(), CacheHits: f.hits.Load()}
}

// Reset zeroes the counters (not the cache).
func (f *Front) Reset() {
	for _, c := range []*atomic.Int64{&f.total, &f.tokens, &f.secrets, &f.other, &f.hits} {
		c.Store(0)
	}
}

// cacheKey holds everything phasetest's answer to a GET can depend on.
func cacheKey(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.URL.RequestURI())
	for _, h := range []string{"Authorization", "Environment", "Path", "X-Use-Camel-Case", "Dynamic", "Lease", "Lease-Ttl", "Accept-Encoding"} {
		b.WriteString("\x00" + h + "=" + strings.Join(r.Header.Values(h), ","))
	}
	return b.String()
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.total.Add(1)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/service/secrets/tokens/":
		f.tokens.Add(1)
	case r.Method == http.MethodGet && r.URL.Path == "/service/secrets/":
		f.secrets.Add(1)
	default:
		f.other.Add(1)
	}
	if d := time.Duration(f.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if r.Method != http.MethodGet {
		f.inner.ServeHTTP(w, r)
		return
	}
	key := cacheKey(r)
	f.mu.Lock()
	rec := f.cache[key]
	f.mu.Unlock()
	if rec == nil {
		rr := httptest.NewRecorder()
		f.inner.ServeHTTP(rr, r)
		rec = &recorded{status: rr.Code, header: rr.Header(), body: rr.Body.Bytes()}
		if rec.status == http.StatusOK {
			f.mu.Lock()
			f.cache[key] = rec
			f.mu.Unlock()
		}
	} else {
		f.hits.Add(1)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body) //nolint:errcheck // the client went away; nothing to do
}
