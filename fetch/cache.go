package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
)

// DefaultCacheMaxAge is how old a last-known-good cache entry may be and
// still stand in for an unreachable Phase.
const DefaultCacheMaxAge = 24 * time.Hour

// DefaultCacheFallbackAfter is the CLI's default Cache.FallbackAfter: with
// a fresh entry in hand, an outage should cost a start a few seconds, not
// the whole --timeout (a fleet restarting into a rate limit otherwise
// waited ~29 of 30 s for a cache it had all along).
const DefaultCacheFallbackAfter = 5 * time.Second

// Cache errors. They describe the cache only and are never returned by
// FetchPhaseCached, which always returns the error of the live fetch (with a
// note about the cache) so the exit code stays that of the outage.
var (
	ErrCacheMiss    = errors.New("no cached secrets")
	ErrCacheStale   = errors.New("cached secrets are too old")
	ErrCacheCorrupt = errors.New("cache file unreadable")
)

// Cache is the opt-in last-known-good cache: one file per (token, host, app,
// env, path, tags, ...) in Dir, encrypted and authenticated under a key
// derived from the token. Without the token a file is useless: it can be
// neither read nor forged, and its name says nothing about its context.
//
// Only Dir is touched (created 0700 when missing), so a read-only root file
// system with a tmpfs or volume at Dir works.
//
// Someone who can write Dir but lacks the token can delete entries, or put
// back an older entry of the same context (still bounded by MaxAge); they
// can neither read one nor make one the shim accepts.
type Cache struct {
	Dir    string
	MaxAge time.Duration // DefaultCacheMaxAge when ≤ 0
	// FallbackAfter, when > 0, bounds the live fetch of FetchPhaseCached
	// while an entry that looks fresh exists: after this long without a
	// result (an outage, a rate limit) the cached copy is used instead of
	// retrying until the caller's deadline. Without such an entry the live
	// fetch keeps the whole deadline. ≤ 0: always the whole deadline.
	FallbackAfter time.Duration

	now func() time.Time // tests
}

// CacheContext is what a cached result answers: two fetches with a
// different context never share a file.
type CacheContext struct {
	Host, AppID, App, Env, Path string
	AllPaths                    bool
	Tags                        []string
	References                  string
	GenerateLeases              bool
	// WorkDir matters only when the app comes from .phase.json (neither
	// AppID nor App given): two checkouts may name different apps.
	WorkDir string
	// ConfigAppID and ConfigApp are that .phase.json's appId and phaseApp,
	// read locally (its defaultEnv lands in Env when no Env was given):
	// editing the file (dev → prod) must not let a start during an outage
	// pick up the other context's cached secrets, and the server cannot be
	// asked to resolve names exactly then.
	ConfigAppID, ConfigApp string
}

// CacheContextOf is the context of a FetchPhase call, normalised so that
// spellings Phase treats alike share a file. When the app comes from
// .phase.json, the file is read (an unreadable one fails FetchPhase before
// any request, so its context does not matter).
func CacheContextOf(o PhaseOptions) CacheContext {
	var cfg *PhaseConfig
	if o.AppID == "" && o.App == "" {
		cfg, _ = FindPhaseConfig(o.WorkDir)
	}
	return cacheContext(o, cfg)
}

// cacheContext is CacheContextOf with the .phase.json already found (nil
// when there is none or it is not used).
func cacheContext(o PhaseOptions, cfg *PhaseConfig) CacheContext {
	c := CacheContext{
		Host: strings.TrimSuffix(o.Host, "/"), AppID: o.AppID, App: strings.ToLower(o.App),
		Env: strings.ToLower(o.Env), AllPaths: o.AllPaths, References: o.References,
		GenerateLeases: o.GenerateLeases,
	}
	if c.Host == "" {
		c.Host = DefaultPhaseHost
	}
	if !o.AllPaths {
		c.Path = normalizePath(o.Path)
	}
	if c.References == "" {
		c.References = RefStrict
	}
	for t := range newTagFilter(o.Tags) {
		c.Tags = append(c.Tags, t)
	}
	slices.Sort(c.Tags)
	if c.AppID == "" && c.App == "" {
		c.WorkDir = o.WorkDir
		if cfg != nil {
			c.ConfigAppID, c.ConfigApp = cfg.AppID, strings.ToLower(cfg.App)
			if c.Env == "" {
				c.Env = strings.ToLower(cfg.DefaultEnv)
			}
		}
	}
	return c
}

// encode is an unambiguous byte string of the context: every field is
// length-prefixed, so no two contexts encode alike.
func (cc CacheContext) encode() []byte {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	str(cc.Host)
	str(cc.AppID)
	str(cc.App)
	str(cc.Env)
	str(cc.Path)
	flag(cc.AllPaths)
	b = binary.AppendUvarint(b, uint64(len(cc.Tags)))
	for _, t := range cc.Tags {
		str(t)
	}
	str(cc.References)
	flag(cc.GenerateLeases)
	str(cc.WorkDir)
	// Only present with a .phase.json app. Every field is length-prefixed,
	// so a longer encoding never equals a shorter one, and contexts without
	// one keep the file names they had before these fields existed.
	if cc.ConfigAppID != "" || cc.ConfigApp != "" {
		str(cc.ConfigAppID)
		str(cc.ConfigApp)
	}
	return b
}

// Domain-separation labels: one token, two unrelated keys.
const (
	cacheKeyLabel  = "phase-shim cache v1 encryption key"
	cacheNameLabel = "phase-shim cache v1 file name key"
	cacheMagic     = "phase-shim-cache\x00v1\n"
	// A cache holds what one Phase answer held; Phase answers are capped
	// at 64 MiB, decrypted and base64-encoded they stay well below this.
	maxCacheFile = 256 << 20
)

// deriveKey is BLAKE2b-256 keyed with the label over the whole token: the
// token carries 256-bit secrets (key share, wrap key), so this is a
// sound KDF, and a different label gives an independent key.
func deriveKey(label, token string) [32]byte {
	h, err := blake2b.New256([]byte(label))
	if err != nil {
		panic("blake2b: " + err.Error()) // a label under 64 bytes never fails
	}
	h.Write([]byte(token))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// fileID is the file's name stem and the AEAD's additional data: a keyed
// hash of the context, so a file renamed to another context's name fails
// to open, and the name leaks nothing without the token.
func fileID(token string, cc CacheContext) string {
	nk := deriveKey(cacheNameLabel, token)
	h, _ := blake2b.New256(nk[:])
	h.Write(cc.encode())
	return hex.EncodeToString(h.Sum(nil)[:20])
}

func (c Cache) path(id string) string { return filepath.Join(c.Dir, id+".cache") }

func (c Cache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c Cache) maxAge() time.Duration {
	if c.MaxAge <= 0 {
		return DefaultCacheMaxAge
	}
	return c.MaxAge
}

// cacheEntry is the plaintext. Strings go in as []byte (base64 in JSON) so
// that values which are not valid UTF-8 come back byte for byte.
type cacheEntry struct {
	SavedAt    time.Time     `json:"saved_at"`
	App        string        `json:"app"`
	Env        string        `json:"env"`
	Path       string        `json:"path"`
	AppID      string        `json:"app_id"`
	EnvID      string        `json:"env_id"`
	ConfigFile string        `json:"config_file,omitempty"`
	Secrets    []cacheSecret `json:"secrets"`
}

type cacheSecret struct {
	Key    []byte `json:"k"`
	Value  []byte `json:"v"`
	Source []byte `json:"s"`
}

// Save writes r as the last-known-good result for (token, cc): a temporary
// file in Dir, fsync, rename over the old one, fsync of Dir. A crash leaves
// either the old file or the new one, never a torn one.
func (c Cache) Save(token string, cc CacheContext, r *PhaseResult) error {
	if c.Dir == "" {
		return errors.New("cache: no directory")
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	e := cacheEntry{SavedAt: c.clock().UTC(), App: r.App, Env: r.Env, Path: r.Path,
		AppID: r.AppID, EnvID: r.EnvID, ConfigFile: r.ConfigFile, Secrets: make([]cacheSecret, len(r.Secrets))}
	for i, s := range r.Secrets {
		e.Secrets[i] = cacheSecret{Key: []byte(s.Key), Value: []byte(s.Value), Source: []byte(s.Source)}
	}
	plain, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cache: encoding: %w", err) // cannot happen for these types
	}
	id := fileID(token, cc)
	key := deriveKey(cacheKeyLabel, token)
	aead, _ := chacha20poly1305.NewX(key[:])
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("cache: random nonce: %w", err)
	}
	out := make([]byte, 0, len(cacheMagic)+len(nonce)+len(plain)+aead.Overhead())
	out = append(out, cacheMagic...)
	out = append(out, nonce...)
	out = aead.Seal(out, nonce, plain, cacheAD(id))
	clear(plain)

	f, err := os.CreateTemp(c.Dir, ".tmp-*.cache")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that
	// detail (and of an odd umask on the file system).
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if _, err := f.Write(out); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	// The modification time is the entry's SavedAt, so that looksFresh can
	// judge an entry by one stat before the fetch (the authenticated
	// SavedAt still decides when the entry is read).
	if err := os.Chtimes(tmp, e.SavedAt, e.SavedAt); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(tmp, c.path(id)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	ok = true
	syncDir(c.Dir)
	return nil
}

// syncDir makes the rename durable. Some file systems refuse fsync on a
// directory; the rename itself has happened, so that is not an error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func cacheAD(id string) []byte { return []byte(cacheMagic + id) }

// Load reads the cached result for (token, cc) and its age. It fails with
// ErrCacheMiss when there is none, ErrCacheCorrupt when the file does not
// authenticate (another token, tampering, truncation) and ErrCacheStale,
// with the age, when it is older than MaxAge.
func (c Cache) Load(token string, cc CacheContext) (*PhaseResult, time.Duration, error) {
	if c.Dir == "" {
		return nil, 0, ErrCacheMiss
	}
	id := fileID(token, cc)
	// Whoever else can write Dir must not be able to hang or bloat the
	// start: no symlink is followed (to /dev/zero, say), a FIFO does not
	// block the open, and only a regular file of sane size is read.
	f, err := os.OpenFile(c.path(id), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrCacheMiss
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrCacheCorrupt, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrCacheCorrupt, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: not a regular file (%s)", ErrCacheCorrupt, fi.Mode().Type())
	}
	if fi.Size() > maxCacheFile {
		return nil, 0, fmt.Errorf("%w: larger than %d bytes", ErrCacheCorrupt, maxCacheFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCacheFile+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrCacheCorrupt, err)
	}
	if len(data) > maxCacheFile {
		return nil, 0, fmt.Errorf("%w: larger than %d bytes", ErrCacheCorrupt, maxCacheFile)
	}
	e, err := openEntry(token, id, data)
	if err != nil {
		return nil, 0, err
	}
	age := c.clock().Sub(e.SavedAt)
	if age < -time.Minute {
		// A clock that went back, or a file from a machine ahead of us:
		// its age is unknown, so it cannot be shown to be fresh.
		return nil, age, fmt.Errorf("%w: written %s in the future", ErrCacheStale, (-age).Round(time.Second))
	}
	age = max(age, 0)
	if age > c.maxAge() {
		return nil, age, fmt.Errorf("%w: %s old, the maximum is %s", ErrCacheStale, roundAge(age), c.maxAge())
	}
	r := &PhaseResult{App: e.App, Env: e.Env, Path: e.Path, AppID: e.AppID, EnvID: e.EnvID,
		ConfigFile: e.ConfigFile, Secrets: e.toSecrets(), FromCache: true, CacheAge: age}
	return r, age, nil
}

func (e *cacheEntry) toSecrets() []Secret {
	out := make([]Secret, len(e.Secrets))
	for i, s := range e.Secrets {
		out[i] = Secret{Key: string(s.Key), Value: string(s.Value), Source: string(s.Source)}
	}
	return out
}

// openEntry authenticates and decodes a cache file. Nothing in the file is
// trusted before the tag checks.
func openEntry(token, id string, data []byte) (*cacheEntry, error) {
	if !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return nil, fmt.Errorf("%w: not a phase-shim cache file", ErrCacheCorrupt)
	}
	data = data[len(cacheMagic):]
	key := deriveKey(cacheKeyLabel, token)
	aead, _ := chacha20poly1305.NewX(key[:])
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrCacheCorrupt)
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], cacheAD(id))
	if err != nil {
		return nil, fmt.Errorf("%w: does not authenticate (another token, or modified)", ErrCacheCorrupt)
	}
	defer clear(plain)
	var e cacheEntry
	if err := json.Unmarshal(plain, &e); err != nil {
		// Authentic but undecodable: written by an incompatible version.
		return nil, fmt.Errorf("%w: unknown layout", ErrCacheCorrupt)
	}
	return &e, nil
}

// Delete removes the cached result for (token, cc); a missing file is fine.
func (c Cache) Delete(token string, cc CacheContext) error {
	if c.Dir == "" {
		return nil
	}
	err := os.Remove(c.path(fileID(token, cc)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

func roundAge(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// FetchPhaseCached is FetchPhase with the last-known-good cache c (a no-op
// when c.Dir is empty, and when o.GenerateLeases is set: leased dynamic
// credentials are never cached):
//
//   - success: the result is saved (a failure to save is a warning in the
//     result, never an error: the secrets are in hand);
//   - ErrUnavailable (network, timeout, 5xx, 429 after retries): a cached
//     result younger than c.MaxAge is returned with FromCache, CacheAge and
//     a warning; a stale, missing or unreadable one leaves the original
//     error, with a note about the cache;
//   - the server's refusal (401, 403, 404, or an app or environment the
//     token's listing does not hold): the cached result is deleted —
//     secrets the token may no longer read must not outlive it — and the
//     error returned;
//   - anything else (a local problem such as a bad .phase.json or a damaged
//     token, a key share that does not open, a tampered answer, bad data):
//     the error, cache kept but not used. These say nothing about what the
//     token may read, and a cache deleted over a typo would be missing in
//     the next outage.
func FetchPhaseCached(ctx context.Context, o PhaseOptions, c Cache) (*PhaseResult, error) {
	if c.Dir == "" {
		return FetchPhase(ctx, o)
	}
	if o.GenerateLeases {
		// Leased credentials expire (or are revoked) on the server's clock;
		// a cached copy could outlive its lease and be injected dead or,
		// worse, after revocation. Fail closed: no cache with leases. A
		// file an older version wrote for this context goes too.
		_ = c.Delete(o.Token, CacheContextOf(o))
		res, err := FetchPhase(ctx, o)
		if err == nil {
			res.Warnings = append(res.Warnings, "the secrets cache is not used when leases are generated: leased credentials must not outlive their lease")
		}
		return res, err
	}
	// Count HTTP attempts ourselves: FetchPhase returns no result on error,
	// and the report of a cached start should say how hard we tried.
	var attempts atomic.Int64
	if o.HTTPClient == nil {
		hc, err := NewHTTPClient(o)
		if err != nil {
			// A local mistake (say, a bad --ca-file): FetchPhase reports
			// it in its own order (a malformed token first), as without a
			// cache; the cache is neither used nor touched.
			return FetchPhase(ctx, o)
		}
		o.HTTPClient = hc
	}
	hc := *o.HTTPClient
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = countingTransport{base: base, n: &attempts}
	o.HTTPClient = &hc

	// .phase.json is read once, here: the context the cache is keyed by
	// and the one fetched must be the same even if the file is edited
	// while we run.
	var cfg *PhaseConfig
	if o.AppID == "" && o.App == "" {
		var cerr error
		if cfg, cerr = FindPhaseConfig(o.WorkDir); cerr != nil {
			// A local mistake: reported exactly as without a cache (a bad
			// token first), the cache neither used nor touched.
			return FetchPhase(ctx, o)
		}
	}
	cc := cacheContext(o, cfg)
	if cfg != nil {
		o.AppID, o.App = cfg.AppID, cfg.App
		if o.Env == "" {
			o.Env = cfg.DefaultEnv
		}
		if o.Debugf != nil {
			o.Debugf("phase: using %s", cfg.File)
		}
	}
	o.WorkDir = "" // already looked for

	have := c.has(o.Token, cc)
	var cutoff time.Duration
	if have && c.FallbackAfter > 0 && c.looksFresh(o.Token, cc) {
		cutoff = c.FallbackAfter
		if o.Debugf != nil {
			o.Debugf("phase: a cached copy younger than %s exists: live fetch for at most %s", c.maxAge(), cutoff)
		}
	}
	live := func(cutoff time.Duration) (res *PhaseResult, cutOff bool, err error) {
		lctx, cancel, byCutoff := liveContext(ctx, have, cutoff)
		defer cancel()
		res, err = FetchPhase(lctx, o)
		if err == nil && cfg != nil {
			res.ConfigFile = cfg.File
		}
		// By the clock, not lctx.Err(): the fetch may notice the deadline
		// before the context's timer fires.
		ldl, _ := lctx.Deadline()
		cutOff = byCutoff && !time.Now().Before(ldl) && ctx.Err() == nil
		return res, cutOff, err
	}
	// settle handles every outcome but an outage; done is false for an
	// outage.
	settle := func(res *PhaseResult, err error) (_ *PhaseResult, done bool, _ error) {
		switch {
		case err == nil:
			if serr := c.Save(o.Token, cc, res); serr != nil {
				res.Warnings = append(res.Warnings, "could not update the secrets cache: "+serr.Error())
			}
			return res, true, nil
		case serverDenied(err):
			if derr := c.Delete(o.Token, cc); derr != nil {
				return nil, true, fmt.Errorf("%w (and the cached secrets could not be removed: %v)", err, derr)
			}
			return nil, true, err
		case !errors.Is(err, ErrUnavailable):
			return nil, true, err
		}
		return nil, false, err
	}

	res, cutOff, err := live(cutoff)
	if res, done, err := settle(res, err); done {
		return res, err
	}
	cached, age, lerr := c.Load(o.Token, cc)
	if lerr != nil && cutoff > 0 && ctx.Err() == nil {
		// The entry looked fresh by its mtime but cannot be used (older
		// than it looked, or damaged): the live fetch was cut short for
		// nothing. It gets the rest of the deadline, as without a cache.
		// The file is not read again: one decryption per start.
		if o.Debugf != nil {
			o.Debugf("phase: the cached copy cannot be used (%v): live fetch until the deadline", lerr)
		}
		res, cutOff, err = live(0)
		if res, done, err := settle(res, err); done {
			return res, err
		}
	}
	switch {
	case lerr == nil:
	case errors.Is(lerr, ErrCacheMiss):
		return nil, err
	case errors.Is(lerr, ErrCacheStale):
		return nil, fmt.Errorf("%w (not using the cached secrets: %v)", err, lerr)
	default:
		return nil, fmt.Errorf("%w (the cached secrets cannot be used: %v)", err, lerr)
	}
	cached.Attempts = int(attempts.Load())
	why := ""
	if cutOff {
		why = fmt.Sprintf(" (no live answer within %s)", cutoff)
	}
	cached.Warnings = append(cached.Warnings, fmt.Sprintf(
		"using the cached secrets saved %s ago%s: %v", roundAge(age), why, err))
	return cached, nil
}

// liveContext is the context of the live fetch.
//
// cutoff > 0 (a fresh-looking cache entry and Cache.FallbackAfter) ends it
// that long from now, so that an outage falls back to the cache within
// seconds instead of retrying until the caller's deadline.
//
// haveCache (a cache file exists) ends it a little before the caller's
// deadline, or the cached start would land after it: a twentieth of the
// time left, at most a second (a cache read takes milliseconds; the rest
// is headroom for a machine busy starting a whole fleet). With a cutoff this
// still matters when the deadline is the nearer of the two (--timeout 3s),
// and when the entry turns out unusable and the fetch resumes until the
// deadline. byCutoff says the cutoff is what ends it.
func liveContext(ctx context.Context, haveCache bool, cutoff time.Duration) (_ context.Context, _ context.CancelFunc, byCutoff bool) {
	now := time.Now()
	var end time.Time
	if dl, ok := ctx.Deadline(); ok && haveCache {
		if reserve := min(dl.Sub(now)/20, time.Second); reserve > 0 {
			end = dl.Add(-reserve)
		}
	}
	if cutoff > 0 {
		if c := now.Add(cutoff); end.IsZero() || c.Before(end) {
			end, byCutoff = c, true
		}
	}
	if end.IsZero() {
		lctx, cancel := context.WithCancel(ctx)
		return lctx, cancel, false
	}
	lctx, cancel := context.WithDeadline(ctx, end)
	return lctx, cancel, byCutoff
}

// has says whether a cache file exists for (token, cc), without reading it
// or following a symlink (Load refuses one anyway).
func (c Cache) has(token string, cc CacheContext) bool {
	_, err := os.Lstat(c.path(fileID(token, cc)))
	return err == nil
}

// looksFresh says, from one lstat, whether the entry for (token, cc) is
// worth cutting the live fetch short for: a regular file of sane size whose
// modification time (Save sets it to the entry's SavedAt) is within MaxAge.
// Nothing is decrypted before the fetch, so a start that reaches Phase pays
// no more than the stat. Whoever can write Dir can fake the time; then
// FetchPhaseCached finds the entry unusable and resumes the live fetch, so
// the cost is a restarted fetch, never a stale start.
func (c Cache) looksFresh(token string, cc CacheContext) bool {
	fi, err := os.Lstat(c.path(fileID(token, cc)))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxCacheFile {
		return false
	}
	age := c.clock().Sub(fi.ModTime())
	return age >= -time.Minute && age <= c.maxAge()
}

type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}
