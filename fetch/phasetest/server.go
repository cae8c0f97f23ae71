// Package phasetest is an in-process emulator of the Phase E2EE API for
// tests, benchmarks and the demo. It is built from plaintext fixtures and
// serves real ciphertexts (encrypted with fetch/phasecrypto exactly as the
// Phase frontend would), accepts writes from the official SDKs, and can
// inject the faults a resilient client must survive.
//
// It must never be imported by the phase-shim binary.
package phasetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// Server is a running emulator.
type Server struct {
	hs   *httptest.Server
	tls  bool
	done chan struct{}
	once sync.Once

	mu       sync.Mutex // guards everything below and the data reachable from it
	rnd      io.Reader
	fixedNow time.Time // zero unless deterministic
	orgID    string
	orgName  string
	apps     []*app
	accounts []*account
	tokens   map[string]*token // "<Type> <value>" → token
	folders  map[string]string // envID+path → folder id
	extra    *http.ServeMux
	extraN   int

	faults faults
	ctr    counters
	conns  atomic.Int64
	leases atomic.Int64
	log    requestLog
}

type app struct {
	id, name string
	envs     []*env
}

type env struct {
	id, name, typ    string
	index            int
	app              *app
	seedHex, saltHex string
	pk, sk           [32]byte
	created          time.Time
	secrets          []*secret // insertion order; deleted ones stay, flagged
	dynamic          []*dynamicSecret
}

type secret struct {
	id, path, keyCT, keyDigest, valueCT, commentCT string
	tags                                           []string
	typ                                            string
	version                                        int
	created, updated                               time.Time
	deleted                                        bool
	tampered                                       bool
	// overrides by user account id; "" applies to every user account.
	overrides map[string]*override
}

type override struct {
	id, valueCT      string
	active           bool
	created, updated time.Time
}

type dynamicSecret struct {
	id, name, description, path, provider string
	defaultTTL, maxTTL                    int
	keys                                  []dynKey
	created                               time.Time
}

type dynKey struct {
	id, keyCT, keyDigest, value string
}

type account struct {
	id, name, kind string
	memberID       string // org member id of a user account
	pk, sk         [32]byte
	app            *app // ServiceV1 only
	grants         []*grant
	tokens         []*token
	expired        bool
}

type grant struct {
	id                       string
	env                      *env
	wrappedSeed, wrappedSalt string
	created                  time.Time
}

type token struct {
	value   string // the bearer part, 64 hex
	str     string // the full token string a client is given
	wrapped string // wrapped_key_share served by the tokens endpoint
	acct    *account
	expires time.Time // zero: never
	revoked bool
}

// Option configures a Server.
type Option func(*config)

type config struct {
	seed      *uint64
	rateLimit int
	burst     int
	tls       bool
}

// WithTLS serves HTTPS with httptest's self-signed certificate for
// 127.0.0.1 (URL then starts with https://). CACertPEM gives the
// certificate to trust; a client without it sees an unknown authority.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithSeed makes every generated id, key and ciphertext a function of seed,
// so two emulators built from one fixture serve identical data.
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = &seed } }

// WithRateLimit starts the server with a token-bucket limit of perMinute
// requests (burst as big as perMinute); see SetRateLimit.
func WithRateLimit(perMinute int) Option {
	return func(c *config) { c.rateLimit, c.burst = perMinute, perMinute }
}

// New starts an emulator on a random 127.0.0.1 port. It panics on an
// invalid fixture, like httptest does on a listen failure: a fixture is
// test code, not input.
func New(f Fixture, opts ...Option) *Server {
	s, err := build(f, opts)
	if err != nil {
		panic("phasetest: " + err.Error())
	}
	s.hs = httptest.NewUnstartedServer(s)
	s.start()
	return s
}

func (s *Server) start() {
	s.hs.Config.ConnState = s.connState
	if s.tls {
		s.hs.StartTLS()
	} else {
		s.hs.Start()
	}
}

// CACertPEM is the PEM certificate a client must trust to reach a WithTLS
// server (nil without TLS); write it to a file for SSL_CERT_FILE or
// --ca-file.
func (s *Server) CACertPEM() []byte {
	if s.hs.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.hs.Certificate().Raw})
}

// Start is New on a fixed address such as "127.0.0.1:0" or
// "127.0.0.1:18777" (the demo, node scripts).
func Start(addr string, f Fixture, opts ...Option) (*Server, error) {
	s, err := build(f, opts)
	if err != nil {
		return nil, fmt.Errorf("phasetest: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("phasetest: %w", err)
	}
	s.hs = httptest.NewUnstartedServer(s)
	s.hs.Listener.Close()
	s.hs.Listener = l
	s.start()
	return s, nil
}

// URL is the origin to give clients as their host, e.g. http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.hs.URL }

// Close stops the server. Handlers sleeping for an injected latency give up
// at once.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.hs.CloseClientConnections()
	s.hs.Close()
}

// Client is an *http.Client for this server.
func (s *Server) Client() *http.Client { return s.hs.Client() }

func (s *Server) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.conns.Add(1)
	}
}

// Connections counts TCP connections accepted so far (keep-alive checks).
func (s *Server) Connections() int64 { return s.conns.Load() }

// Handle registers an extra route (a ServeMux pattern on the original path,
// e.g. "POST /service/public/identities/external/v1/aws/iam/auth/"). Extra
// routes are counted as Other and see faults aimed at every endpoint or at
// EndpointOther.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra.Handle(pattern, h)
	s.extraN++
}

type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}

func build(f Fixture, opts []Option) (*Server, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &Server{
		tls:     c.tls,
		done:    make(chan struct{}),
		tokens:  map[string]*token{},
		folders: map[string]string{},
		extra:   http.NewServeMux(),
		orgName: f.OrgName,
	}
	if c.seed != nil {
		var key [32]byte
		for i := 0; i < 8; i++ {
			key[i] = byte(*c.seed >> (8 * i))
		}
		s.rnd = &lockedReader{r: mrand.NewChaCha8(key)}
		s.fixedNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	} else {
		s.rnd = &lockedReader{r: rand.Reader}
	}
	if c.rateLimit > 0 {
		s.SetRateLimit(c.rateLimit, c.burst)
	}
	if s.orgName == "" {
		s.orgName = "phasetest"
	}
	s.orgID = s.uuid()
	now := s.now()
	for _, fa := range f.Apps {
		if fa.Name == "" {
			return nil, fmt.Errorf("app without a name")
		}
		if s.findApp(fa.Name) != nil {
			return nil, fmt.Errorf("duplicate app %q", fa.Name)
		}
		a := &app{id: fa.ID, name: fa.Name}
		if a.id == "" {
			a.id = s.uuid()
		}
		for i, fe := range fa.Envs {
			e, err := s.buildEnv(a, i, fe, now)
			if err != nil {
				return nil, fmt.Errorf("app %q: %w", fa.Name, err)
			}
			a.envs = append(a.envs, e)
		}
		s.apps = append(s.apps, a)
	}
	accounts := f.Accounts
	if len(accounts) == 0 {
		for _, a := range s.apps {
			accounts = append(accounts, Account{Name: a.name + "-service-token", Kind: ServiceV1, App: a.name})
		}
		accounts = append(accounts,
			Account{Name: "service-account", Kind: ServiceV2},
			Account{Name: "user", Kind: User})
	}
	for _, fa := range accounts {
		if err := s.buildAccount(fa, now); err != nil {
			return nil, fmt.Errorf("account %q: %w", fa.Name, err)
		}
	}
	return s, nil
}

func (s *Server) buildEnv(a *app, index int, fe Env, now time.Time) (*env, error) {
	if fe.Name == "" {
		return nil, fmt.Errorf("environment without a name")
	}
	e := &env{id: fe.ID, name: fe.Name, typ: fe.Type, index: index, app: a, created: now}
	if e.id == "" {
		e.id = s.uuid()
	}
	if e.typ == "" {
		e.typ = envType(fe.Name)
	}
	var err error
	if e.seedHex, err = s.hex32(fe.Seed); err != nil {
		return nil, fmt.Errorf("environment %q seed: %w", fe.Name, err)
	}
	if e.saltHex, err = s.hex32(fe.Salt); err != nil {
		return nil, fmt.Errorf("environment %q salt: %w", fe.Name, err)
	}
	seed, _ := hex.DecodeString(e.seedHex)
	e.pk, e.sk = phasecrypto.SeedKeyPair(seed)
	for _, fs := range fe.Secrets {
		sec, err := s.encryptSecret(e, fs, now)
		if err != nil {
			return nil, fmt.Errorf("environment %q: %w", fe.Name, err)
		}
		e.secrets = append(e.secrets, sec)
		// Assigned now, not on first request, so a seeded server gives the
		// same folder ids whatever order concurrent clients arrive in.
		s.folderID(e, sec.path)
	}
	for _, fd := range fe.Dynamic {
		d := &dynamicSecret{id: fd.ID, name: fd.Name, description: fd.Description,
			path: normalizePath(fd.Path), provider: fd.Provider,
			defaultTTL: fd.DefaultTTL, maxTTL: fd.MaxTTL, created: now}
		if d.id == "" {
			d.id = s.uuid()
		}
		if d.provider == "" {
			d.provider = "aws"
		}
		if d.defaultTTL == 0 {
			d.defaultTTL = 3600
		}
		if d.maxTTL == 0 {
			d.maxTTL = 86400
		}
		for _, c := range fd.Credentials {
			kct, err := s.encrypt(e, c.Key)
			if err != nil {
				return nil, err
			}
			d.keys = append(d.keys, dynKey{id: s.uuid(), keyCT: kct,
				keyDigest: phasecrypto.Digest(c.Key, e.saltHex), value: c.Value})
		}
		e.dynamic = append(e.dynamic, d)
		s.folderID(e, d.path)
	}
	return e, nil
}

func envType(name string) string {
	switch strings.ToLower(name) {
	case "development", "dev":
		return "dev"
	case "staging":
		return "staging"
	case "production", "prod":
		return "prod"
	}
	return "custom"
}

func (s *Server) encryptSecret(e *env, fs Secret, now time.Time) (*secret, error) {
	if fs.Key == "" {
		return nil, fmt.Errorf("secret without a key")
	}
	sec := &secret{id: fs.ID, path: normalizePath(fs.Path), typ: fs.Type, version: 1,
		created: now, updated: now, keyDigest: phasecrypto.Digest(fs.Key, e.saltHex),
		tags: append([]string{}, fs.Tags...)}
	if sec.id == "" {
		sec.id = s.uuid()
	}
	if sec.typ == "" {
		sec.typ = "secret"
	}
	var err error
	if sec.keyCT, err = s.encrypt(e, fs.Key); err != nil {
		return nil, err
	}
	if sec.valueCT, err = s.encrypt(e, fs.Value); err != nil {
		return nil, err
	}
	if fs.Comment != "" {
		if sec.commentCT, err = s.encrypt(e, fs.Comment); err != nil {
			return nil, err
		}
	}
	if fs.Override != nil {
		ct, err := s.encrypt(e, fs.Override.Value)
		if err != nil {
			return nil, err
		}
		sec.overrides = map[string]*override{"": {id: s.uuid(), valueCT: ct,
			active: fs.Override.Active, created: now, updated: now}}
	}
	return sec, nil
}

func (s *Server) encrypt(e *env, plaintext string) (string, error) {
	return phasecrypto.Encrypt([]byte(plaintext), hex.EncodeToString(e.pk[:]), s.rnd)
}

func (s *Server) buildAccount(fa Account, now time.Time) error {
	a := &account{id: s.uuid(), name: fa.Name, kind: fa.Kind, expired: fa.Expired}
	switch fa.Kind {
	case ServiceV1:
		a.app = s.findApp(fa.App)
		if a.app == nil {
			return fmt.Errorf("unknown app %q", fa.App)
		}
	case ServiceV2:
	case User:
		a.memberID = s.uuid()
	default:
		return fmt.Errorf("unknown kind %q", fa.Kind)
	}
	var err error
	if a.pk, a.sk, err = phasecrypto.NewKeyPair(s.rnd); err != nil {
		return err
	}
	var envs []*env
	if fa.Grants == nil {
		for _, ap := range s.apps {
			if a.app == nil || a.app == ap {
				envs = append(envs, ap.envs...)
			}
		}
	}
	for _, g := range fa.Grants {
		ap := s.findApp(g.App)
		if ap == nil {
			return fmt.Errorf("grant: unknown app %q", g.App)
		}
		e := findEnv(ap, g.Env)
		if e == nil {
			return fmt.Errorf("grant: unknown environment %q of app %q", g.Env, g.App)
		}
		if a.app != nil && a.app != ap {
			return fmt.Errorf("grant: a service_v1 token of %q cannot hold %q", a.app.name, ap.name)
		}
		envs = append(envs, e)
	}
	pkHex := hex.EncodeToString(a.pk[:])
	for _, e := range envs {
		g := &grant{id: s.uuid(), env: e, created: now}
		if g.wrappedSeed, err = phasecrypto.Encrypt([]byte(e.seedHex), pkHex, s.rnd); err != nil {
			return err
		}
		if g.wrappedSalt, err = phasecrypto.Encrypt([]byte(e.saltHex), pkHex, s.rnd); err != nil {
			return err
		}
		a.grants = append(a.grants, g)
	}
	s.accounts = append(s.accounts, a)
	_, err = s.mint(a, 0)
	return err
}

// mint issues a token for a's key pair as the console does (spec §4.3):
// the private key is split into two XOR shares, one in the token string and
// one stored wrapped under a key that only the token string carries.
func (s *Server) mint(a *account, ttl time.Duration) (*token, error) {
	var value, wrapKey, share0, share1 [32]byte
	for _, b := range [][]byte{value[:], wrapKey[:], share0[:]} {
		if _, err := io.ReadFull(s.rnd, b); err != nil {
			return nil, err
		}
	}
	for i := range share1 {
		share1[i] = share0[i] ^ a.sk[i]
	}
	wrapped, err := phasecrypto.WrapShare(wrapKey, hex.EncodeToString(share1[:]), s.rnd)
	if err != nil {
		return nil, err
	}
	prefix := map[string]string{ServiceV1: "pss_service:v1", ServiceV2: "pss_service:v2", User: "pss_user:v1"}[a.kind]
	t := &token{value: hex.EncodeToString(value[:]), acct: a, wrapped: wrapped}
	t.str = strings.Join([]string{prefix, t.value, hex.EncodeToString(a.pk[:]),
		hex.EncodeToString(share0[:]), hex.EncodeToString(wrapKey[:])}, ":")
	if ttl > 0 {
		t.expires = time.Now().Add(ttl)
	}
	a.tokens = append(a.tokens, t)
	s.tokens[authType(a.kind)+" "+t.value] = t
	return t, nil
}

func authType(kind string) string {
	switch kind {
	case ServiceV1:
		return "Service"
	case ServiceV2:
		return "ServiceAccount"
	}
	return "User"
}

func (s *Server) findApp(name string) *app {
	for _, a := range s.apps {
		if a.name == name {
			return a
		}
	}
	for _, a := range s.apps {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func findEnv(a *app, name string) *env {
	for _, e := range a.envs {
		if e.name == name {
			return e
		}
	}
	for _, e := range a.envs {
		if strings.EqualFold(e.name, name) {
			return e
		}
	}
	return nil
}

func (s *Server) now() time.Time {
	if !s.fixedNow.IsZero() {
		return s.fixedNow
	}
	return time.Now().UTC()
}

func (s *Server) uuid() string {
	var b [16]byte
	if _, err := io.ReadFull(s.rnd, b[:]); err != nil {
		panic("phasetest: randomness: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// hex32 returns v when it is 64 hex characters (lower-cased), or fresh
// random material when v is empty.
func (s *Server) hex32(v string) (string, error) {
	if v == "" {
		var b [32]byte
		if _, err := io.ReadFull(s.rnd, b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("want 64 hex characters")
	}
	return strings.ToLower(v), nil
}

// normalizePath mirrors the server's normalize_path_string: leading slash,
// collapsed slashes, no trailing slash except for the root. Like the
// server it does not resolve "..".
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}
