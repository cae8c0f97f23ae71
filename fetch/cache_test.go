package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

// Tokens of the right shape; the cache never parses them, it only derives
// keys from the whole string.
const (
	cacheTokenA = "pss_service:v2:aaaa:bbbb:cccc:dddd"
	cacheTokenB = "pss_service:v2:aaaa:bbbb:cccc:ddde" // one character apart
)

func sampleResult() *PhaseResult {
	return &PhaseResult{
		App: "shop", Env: "Production", Path: "/", AppID: "app-1", EnvID: "env-1",
		Secrets: []Secret{
			{Key: "PLAIN", Value: "v", Source: "phase:/"},
			{Key: "SPACES", Value: "  a b  ", Source: "phase:/"},
			{Key: "NEWLINES", Value: "line1\nline2\r\n", Source: "phase:/"},
			{Key: "NUL", Value: "a\x00b", Source: "phase:/"},
			{Key: "NOT_UTF8", Value: "\xff\xfe\x80", Source: "phase:/"},
			{Key: "EMPTY", Value: "", Source: "phase:/"},
			{Key: "SECRET_KEY?", Value: "x=$y`z`", Source: "phase:/backend"},
		},
	}
}

// diffSecrets compares two secret lists and reports key names and lengths
// only, never a value.
func diffSecrets(got, want []Secret) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "got %d secrets, want %d\n", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Source != w.Source {
			fmt.Fprintf(&b, "#%d: got key %q from %q, want %q from %q\n", i, g.Key, g.Source, w.Key, w.Source)
			continue
		}
		if g.Value != w.Value {
			at := 0
			for at < min(len(g.Value), len(w.Value)) && g.Value[at] == w.Value[at] {
				at++
			}
			fmt.Fprintf(&b, "%s: got %d bytes, want %d bytes, first difference at byte %d\n", g.Key, len(g.Value), len(w.Value), at)
		}
	}
	return b.String()
}

func testCache(t *testing.T) Cache {
	return Cache{Dir: filepath.Join(t.TempDir(), "cache"), MaxAge: time.Hour}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var ctxProd = CacheContext{Host: "https://phase.example", App: "shop", Env: "production", Path: "/", References: RefStrict}

func TestCacheRoundTrip(t *testing.T) {
	c := testCache(t)
	want := sampleResult()
	if err := c.Save(cacheTokenA, ctxProd, want); err != nil {
		t.Fatal(err)
	}
	got, age, err := c.Load(cacheTokenA, ctxProd)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSecrets(got.Secrets, want.Secrets); d != "" {
		t.Error(d)
	}
	labels := func(r *PhaseResult) []string { return []string{r.App, r.Env, r.Path, r.AppID, r.EnvID} }
	if d := cmp.Diff(labels(want), labels(got)); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if !got.FromCache || got.CacheAge != age || age < 0 {
		t.Errorf("FromCache %v, CacheAge %s, age %s", got.FromCache, got.CacheAge, age)
	}
	// A second save replaces the file and leaves no temporary behind.
	if err := c.Save(cacheTokenA, ctxProd, want); err != nil {
		t.Fatal(err)
	}
	if n := cacheFiles(t, c.Dir); len(n) != 1 || !strings.HasSuffix(n[0], ".cache") || strings.HasPrefix(n[0], ".tmp") {
		t.Errorf("files in the cache dir: %q", n)
	}
}

func TestCacheFileLeaksNothing(t *testing.T) {
	c := testCache(t)
	r := sampleResult()
	r.Secrets = append(r.Secrets, Secret{Key: "MARKER_KEY_NAME", Value: "marker-value-0123456789", Source: "phase:/"})
	if err := c.Save(cacheTokenA, ctxProd, r); err != nil {
		t.Fatal(err)
	}
	names := cacheFiles(t, c.Dir)
	data, err := os.ReadFile(filepath.Join(c.Dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MARKER_KEY_NAME", "marker-value", "shop", "Production", "phase.example", cacheTokenA, "aaaa"} {
		if strings.Contains(string(data), s) || strings.Contains(names[0], s) {
			t.Errorf("cache file or its name contains the plaintext %q (%d bytes)", s, len(s))
		}
	}
}

func TestCacheOtherTokenOrContext(t *testing.T) {
	c := testCache(t)
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	// Another token looks for another file name...
	if _, _, err := c.Load(cacheTokenB, ctxProd); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("other token: got %v, want ErrCacheMiss", err)
	}
	// ...and a file copied to that name (someone who has the files but not
	// the token) does not open.
	src := c.path(fileID(cacheTokenA, ctxProd))
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(fileID(cacheTokenB, ctxProd)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(cacheTokenB, ctxProd); !errors.Is(err, ErrCacheCorrupt) {
		t.Errorf("copied file, other token: got %v, want ErrCacheCorrupt", err)
	}
	// Same token, file moved to another context's name: the context is
	// authenticated data, so staging (Staging's secrets served as
	// Production's) fails too.
	staging := ctxProd
	staging.Env = "staging"
	if err := os.WriteFile(c.path(fileID(cacheTokenA, staging)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(cacheTokenA, staging); !errors.Is(err, ErrCacheCorrupt) {
		t.Errorf("file moved to another context: got %v, want ErrCacheCorrupt", err)
	}
}

func TestCacheContextNames(t *testing.T) {
	base := CacheContextOf(PhaseOptions{Host: "https://h/", App: "Shop", Env: "PROD", Path: "backend//", Tags: []string{"B_x", "a"}})
	same := CacheContextOf(PhaseOptions{Host: "https://h", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}, References: RefStrict})
	if d := cmp.Diff(base, same); d != "" {
		t.Errorf("equivalent options give different contexts:\n%s", d)
	}
	variants := map[string]PhaseOptions{
		"host":     {Host: "https://other", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}},
		"app":      {Host: "https://h", App: "shop2", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}},
		"app id":   {Host: "https://h", AppID: "shop", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}},
		"env":      {Host: "https://h", App: "shop", Env: "dev", Path: "/backend", Tags: []string{"a", "b x"}},
		"path":     {Host: "https://h", App: "shop", Env: "prod", Path: "/", Tags: []string{"a", "b x"}},
		"all":      {Host: "https://h", App: "shop", Env: "prod", AllPaths: true, Tags: []string{"a", "b x"}},
		"tags":     {Host: "https://h", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a"}},
		"refs":     {Host: "https://h", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}, References: RefRaw},
		"leases":   {Host: "https://h", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a", "b x"}, GenerateLeases: true},
		"tag join": {Host: "https://h", App: "shop", Env: "prod", Path: "/backend", Tags: []string{"a b x"}},
	}
	seen := map[string]string{fileID(cacheTokenA, base): "base"}
	for name, o := range variants {
		id := fileID(cacheTokenA, CacheContextOf(o))
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share a cache file", name, prev)
		}
		seen[id] = name
	}
	// The work directory only counts when .phase.json picks the app.
	a := CacheContextOf(PhaseOptions{App: "shop", WorkDir: "/a"})
	b := CacheContextOf(PhaseOptions{App: "shop", WorkDir: "/b"})
	if fileID(cacheTokenA, a) != fileID(cacheTokenA, b) {
		t.Error("work dir changes the file although the app is given")
	}
	a, b = CacheContextOf(PhaseOptions{WorkDir: "/a"}), CacheContextOf(PhaseOptions{WorkDir: "/b"})
	if fileID(cacheTokenA, a) == fileID(cacheTokenA, b) {
		t.Error("two .phase.json checkouts share a cache file")
	}
}

func TestCacheTamper(t *testing.T) {
	c := testCache(t)
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	p := c.path(fileID(cacheTokenA, ctxProd))
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// One flipped bit anywhere (magic, nonce, ciphertext, tag), a
	// truncation at any length, or an extra byte: never accepted.
	for i := 0; i < len(orig); i++ {
		mod := append([]byte(nil), orig...)
		mod[i] ^= 0x01
		if err := os.WriteFile(p, mod, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheCorrupt) {
			t.Fatalf("bit flip at byte %d of %d: got %v, want ErrCacheCorrupt", i, len(orig), err)
		}
	}
	for _, n := range []int{0, 1, len(cacheMagic), len(cacheMagic) + 24, len(cacheMagic) + 39, len(orig) - 1} {
		if err := os.WriteFile(p, orig[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheCorrupt) {
			t.Errorf("truncated to %d bytes: got %v, want ErrCacheCorrupt", n, err)
		}
	}
	if err := os.WriteFile(p, append(append([]byte(nil), orig...), 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheCorrupt) {
		t.Errorf("extra byte: got %v, want ErrCacheCorrupt", err)
	}
}

func TestCacheAge(t *testing.T) {
	saved := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := testCache(t)
	c.MaxAge = 2 * time.Hour
	c.now = func() time.Time { return saved }
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after   time.Duration
		wantErr error
	}{
		{0, nil},
		{2 * time.Hour, nil},
		{2*time.Hour + time.Second, ErrCacheStale},
		{48 * time.Hour, ErrCacheStale},
		{-30 * time.Second, nil},        // small clock skew: age 0
		{-2 * time.Hour, ErrCacheStale}, // written "in the future": age unknown
	} {
		c.now = func() time.Time { return saved.Add(tc.after) }
		r, age, err := c.Load(cacheTokenA, ctxProd)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("after %s: got %v, want %v", tc.after, err, tc.wantErr)
			continue
		}
		if err == nil && (r.CacheAge != max(tc.after, 0) || age != r.CacheAge) {
			t.Errorf("after %s: age %s / %s", tc.after, age, r.CacheAge)
		}
		if errors.Is(err, ErrCacheStale) && tc.after > 0 && !strings.Contains(err.Error(), tc.after.String()) {
			t.Errorf("after %s: the stale error does not give the age: %v", tc.after, err)
		}
	}
	// The default maximum age is 24h.
	c.MaxAge = 0
	c.now = func() time.Time { return saved.Add(23 * time.Hour) }
	if _, _, err := c.Load(cacheTokenA, ctxProd); err != nil {
		t.Errorf("23h with the default max age: %v", err)
	}
	c.now = func() time.Time { return saved.Add(25 * time.Hour) }
	if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheStale) {
		t.Errorf("25h with the default max age: %v", err)
	}
}

func TestCacheModes(t *testing.T) {
	old := unix.Umask(0)
	defer unix.Umask(old)
	c := testCache(t)
	c.Dir = filepath.Join(c.Dir, "nested", "dir")
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.Dir, filepath.Dir(c.Dir)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}
	fi, err := os.Stat(c.path(fileID(cacheTokenA, ctxProd)))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("cache file mode %o, want 600", m)
	}
	// An existing directory (a volume) keeps its own mode: we do not chmod
	// what we did not create.
	vol := t.TempDir()
	if err := os.Chmod(vol, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := (Cache{Dir: vol}).Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(vol); fi.Mode().Perm() != 0o750 {
		t.Errorf("existing dir mode changed to %o", fi.Mode().Perm())
	}
}

func TestCacheDelete(t *testing.T) {
	c := testCache(t)
	if err := c.Delete(cacheTokenA, ctxProd); err != nil {
		t.Errorf("delete without a file (or dir): %v", err)
	}
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(cacheTokenB, ctxProd); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(cacheTokenA, ctxProd); err != nil {
		t.Errorf("another token's delete removed the file: %v", err)
	}
	if err := c.Delete(cacheTokenA, ctxProd); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("after delete: %v", err)
	}
}

// unwritableDir is a cache directory that cannot be created, for any user,
// root included: its parent is a regular file.
func unwritableDir(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(f, "cache")
}

// --- FetchPhaseCached against the emulator ---

type cachedFixture struct {
	srv   *phasetest.Server
	token string
	o     PhaseOptions
	c     Cache
}

func newCachedFixture(t *testing.T) *cachedFixture {
	t.Helper()
	s := phasetest.New(phasetest.DemoFixture())
	t.Cleanup(s.Close)
	tok := s.Token("shop", "service_v2")
	return &cachedFixture{
		srv: s, token: tok, c: testCache(t),
		o: PhaseOptions{Token: tok, Host: s.URL(), App: "shop", Env: "Production", Path: "/",
			MaxAttempts: 3, RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond},
	}
}

func (f *cachedFixture) fetch(t *testing.T) (*PhaseResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return FetchPhaseCached(ctx, f.o, f.c)
}

func (f *cachedFixture) cacheExists(t *testing.T) bool {
	t.Helper()
	_, err := os.Stat(f.c.path(fileID(f.token, CacheContextOf(f.o))))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestFetchPhaseCachedOutage(t *testing.T) {
	f := newCachedFixture(t)
	live, err := f.fetch(t)
	if err != nil {
		t.Fatal(err)
	}
	if live.FromCache || !f.cacheExists(t) {
		t.Fatalf("live fetch: FromCache %v, cache written %v", live.FromCache, f.cacheExists(t))
	}
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway} {
		f.srv.ClearFaults()
		f.srv.FailFirst(1000, status)
		got, err := f.fetch(t)
		if err != nil {
			t.Fatalf("%d with a fresh cache: %v", status, err)
		}
		if d := diffSecrets(got.Secrets, live.Secrets); d != "" {
			t.Errorf("%d: cached secrets differ:\n%s", status, d)
		}
		if !got.FromCache || got.Attempts != 3 || got.App != "shop" || got.Env != "Production" {
			t.Errorf("%d: FromCache %v attempts %d app %q env %q", status, got.FromCache, got.Attempts, got.App, got.Env)
		}
		if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "cached secrets saved") {
			t.Errorf("%d: warnings %q", status, got.Warnings)
		}
	}

	// Stale: same outage, the cache is older than the maximum age.
	f.c.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	_, err = f.fetch(t)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "too old") {
		t.Errorf("stale cache: got %v, want ErrUnavailable mentioning the age", err)
	}
	f.c.now = nil

	// A refused connection is an outage too.
	f.srv.Close()
	if got, err := f.fetch(t); err != nil || !got.FromCache {
		t.Errorf("server gone: %v", err)
	}
}

func TestFetchPhaseCachedAuthDeletes(t *testing.T) {
	f := newCachedFixture(t)
	tok, err := f.srv.MintToken("shop", "service_v2", 0)
	if err != nil {
		t.Fatal(err)
	}
	f.token, f.o.Token = tok, tok
	if _, err := f.fetch(t); err != nil {
		t.Fatal(err)
	}
	if !f.cacheExists(t) {
		t.Fatal("no cache after a live fetch")
	}
	f.srv.ExpireToken(tok)
	if _, err := f.fetch(t); !errors.Is(err, ErrAuth) {
		t.Fatalf("expired token: got %v, want ErrAuth", err)
	}
	if f.cacheExists(t) {
		t.Error("the cache survived a rejected token")
	}
	// 401 from the server the same way.
	f.srv.ClearFaults()
	f2 := newCachedFixture(t)
	if _, err := f2.fetch(t); err != nil {
		t.Fatal(err)
	}
	f2.srv.FailFirst(1, http.StatusUnauthorized)
	if _, err := f2.fetch(t); !errors.Is(err, ErrAuth) || f2.cacheExists(t) {
		t.Errorf("401: err %v, cache still there %v", err, f2.cacheExists(t))
	}
}

func TestFetchPhaseCachedConfigDeletes(t *testing.T) {
	f := newCachedFixture(t)
	// A cache for an environment that no longer exists (deleted in Phase,
	// or the token lost access to it).
	f.o.Env = "Retired"
	if err := f.c.Save(f.token, CacheContextOf(f.o), sampleResult()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.fetch(t); !errors.Is(err, ErrConfig) {
		t.Fatalf("unknown env: got %v, want ErrConfig", err)
	}
	if f.cacheExists(t) {
		t.Error("the cache survived an unknown environment")
	}
	// A 404 from the server the same way.
	f2 := newCachedFixture(t)
	if _, err := f2.fetch(t); err != nil {
		t.Fatal(err)
	}
	f2.srv.FailFirst(1, http.StatusNotFound)
	if _, err := f2.fetch(t); !errors.Is(err, ErrConfig) || f2.cacheExists(t) {
		t.Errorf("404: err %v, cache still there %v", err, f2.cacheExists(t))
	}
}

// TestFetchPhaseCachedPhaseJSONContext: the app and environment read from
// .phase.json are part of the cache context. A .phase.json switched from
// one environment to another, or to another app, and a start during an
// outage must not inject the secrets cached for the old one.
func TestFetchPhaseCachedPhaseJSONContext(t *testing.T) {
	f := newCachedFixture(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, PhaseConfigFile)
	f.o.App, f.o.Env, f.o.WorkDir = "", "", dir
	writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Development"}`)
	dev, err := f.fetch(t)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Env != "Development" || dev.ConfigFile != cfg {
		t.Fatalf("live fetch: env %q, config file %q", dev.Env, dev.ConfigFile)
	}
	f.srv.FailFirst(1<<30, http.StatusServiceUnavailable)
	for _, content := range []string{
		`{"phaseApp": "shop", "defaultEnv": "Production"}`,
		`{"appId": "` + f.srv.AppID("shop") + `", "defaultEnv": "Development"}`,
	} {
		writeFile(t, cfg, content)
		got, err := f.fetch(t)
		if err == nil {
			t.Errorf("%s during an outage: started from the cache of app %q env %q", content, got.App, got.Env)
		} else if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s during an outage: got %v, want ErrUnavailable", content, err)
		}
	}
	// The file as it was when the cache was written: the cache serves.
	writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Development"}`)
	got, err := f.fetch(t)
	if err != nil || !got.FromCache || got.Env != "Development" {
		t.Fatalf("unchanged .phase.json during an outage: %v", err)
	}
	if d := diffSecrets(got.Secrets, dev.Secrets); d != "" {
		t.Errorf("cached secrets differ:\n%s", d)
	}
	// With --env given, defaultEnv plays no part.
	f.o.Env = "development"
	writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Production"}`)
	if got, err := f.fetch(t); err != nil || !got.FromCache {
		t.Errorf("--env development with defaultEnv Production: %v", err)
	}
}

// TestFetchPhaseCachedNoLeases: with GenerateLeases the cache is neither
// written nor read, so a leased credential is never injected after its
// lease, and an outage fails closed.
func TestFetchPhaseCachedNoLeases(t *testing.T) {
	f := newCachedFixture(t)
	f.o.Env, f.o.GenerateLeases = "Staging", true
	live, err := f.fetch(t)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv.LeasesCreated() == 0 {
		t.Fatal("the fixture created no lease: nothing to check")
	}
	if f.cacheExists(t) {
		t.Error("a result with leased credentials was cached")
	}
	if len(live.Warnings) != 1 || !strings.Contains(live.Warnings[0], "not used when leases are generated") {
		t.Errorf("warnings: %q", live.Warnings)
	}
	// Even a file already there (an older version's) is not used.
	if err := f.c.Save(f.token, CacheContextOf(f.o), live); err != nil {
		t.Fatal(err)
	}
	f.srv.FailFirst(1<<30, http.StatusServiceUnavailable)
	if got, err := f.fetch(t); !errors.Is(err, ErrUnavailable) {
		t.Errorf("outage with leases: got %v (from cache %v), want ErrUnavailable", err, got != nil && got.FromCache)
	}
	if f.cacheExists(t) {
		t.Error("the old file with leased credentials is still there")
	}
}

// TestFetchPhaseCachedLocalErrorsKeep: an ErrAuth or ErrConfig that is not
// the server's refusal says nothing about what the token may read, so it
// must not cost the cache the next outage needs.
func TestFetchPhaseCachedLocalErrorsKeep(t *testing.T) {
	t.Run("broken .phase.json", func(t *testing.T) {
		f := newCachedFixture(t)
		dir := t.TempDir()
		cfg := filepath.Join(dir, PhaseConfigFile)
		writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Production"}`)
		f.o.App, f.o.Env, f.o.WorkDir = "", "", dir
		if _, err := f.fetch(t); err != nil {
			t.Fatal(err)
		}
		if !f.cacheExists(t) {
			t.Fatal("no cache after a live fetch")
		}
		writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Production",}`)
		if _, err := f.fetch(t); !errors.Is(err, ErrConfig) {
			t.Fatalf("broken .phase.json: got %v, want ErrConfig", err)
		}
		writeFile(t, cfg, `{"phaseApp": "shop", "defaultEnv": "Production"}`)
		if !f.cacheExists(t) {
			t.Error("a local .phase.json typo removed the cache")
		}
	})
	t.Run("key share that does not open", func(t *testing.T) {
		f := newCachedFixture(t)
		if _, err := f.fetch(t); err != nil {
			t.Fatal(err)
		}
		f.o.HTTPClient = &http.Client{Transport: garbleKeyShare{http.DefaultTransport}}
		if _, err := f.fetch(t); !errors.Is(err, ErrAuth) {
			t.Fatalf("garbled key share: got %v, want ErrAuth", err)
		}
		if !f.cacheExists(t) {
			t.Error("a key share that does not open removed the cache")
		}
	})
	t.Run("malformed token and a bad CA file, as without a cache", func(t *testing.T) {
		o := PhaseOptions{Token: "not-a-token", Host: "https://127.0.0.1:1", App: "shop",
			CAFile: filepath.Join(t.TempDir(), "missing.pem")}
		_, plain := FetchPhase(context.Background(), o)
		dir := t.TempDir()
		_, cached := FetchPhaseCached(context.Background(), o, Cache{Dir: dir})
		if !errors.Is(plain, ErrAuth) || !errors.Is(cached, ErrAuth) {
			t.Fatalf("got %v without a cache and %v with one, want ErrAuth for both", plain, cached)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("the cache dir holds %d entries after a local error", len(ents))
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// garbleKeyShare flips one hex digit of the wrapped key share in the tokens
// answer: a damaged answer (or token), not a refusal.
type garbleKeyShare struct{ base http.RoundTripper }

func (g garbleKeyShare) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/tokens/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if share, ok := m["wrapped_key_share"].(string); ok && share != "" {
		last := share[len(share)-1]
		flip := byte('0')
		if last == '0' {
			flip = '1'
		}
		m["wrapped_key_share"] = share[:len(share)-1] + string(flip)
	}
	if body, err = json.Marshal(m); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func TestFetchPhaseCachedTamperedNotUsed(t *testing.T) {
	f := newCachedFixture(t)
	if _, err := f.fetch(t); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.TamperSecret("shop", "Production", "STRIPE_KEY"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.fetch(t); !errors.Is(err, ErrProtocol) {
		t.Fatalf("tampered: got %v, want ErrProtocol", err)
	}
	if !f.cacheExists(t) {
		t.Error("a tampered answer removed the cache")
	}
}

func TestFetchPhaseCachedUnusableCache(t *testing.T) {
	f := newCachedFixture(t)
	if _, err := f.fetch(t); err != nil {
		t.Fatal(err)
	}
	p := f.c.path(fileID(f.token, CacheContextOf(f.o)))
	if err := os.WriteFile(p, []byte(cacheMagic+"garbage that is long enough to hold a nonce and a tag"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.srv.FailFirst(1000, http.StatusServiceUnavailable)
	_, err := f.fetch(t)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cannot be used") {
		t.Errorf("corrupt cache during an outage: %v", err)
	}
	// No cache at all: just the outage.
	f.c.Dir = filepath.Join(t.TempDir(), "empty")
	if _, err := f.fetch(t); !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "cache") {
		t.Errorf("no cache during an outage: %v", err)
	}
}

func TestFetchPhaseCachedUnwritableWarns(t *testing.T) {
	f := newCachedFixture(t)
	f.c.Dir = unwritableDir(t)
	res, err := f.fetch(t)
	if err != nil {
		t.Fatalf("an unwritable cache failed the start: %v", err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "could not update the secrets cache") {
		t.Errorf("warnings: %q", res.Warnings)
	}
}

// TestCacheReadOnlyFS runs Save and Load in a child with its own mount
// namespace, where the whole temporary tree is a read-only bind mount and
// only the cache directory is a writable tmpfs: the container layout with a
// read-only root. A second child makes the cache dir itself read-only.
func TestCacheReadOnlyFS(t *testing.T) {
	if mode := os.Getenv("PHASE_SHIM_CACHE_ROFS_CHILD"); mode != "" {
		roFSChild(mode)
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
			t.Fatal("needs root for a mount namespace")
		}
		t.Skip("needs root for a mount namespace")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "cache"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"tmpfs", "readonly"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCacheReadOnlyFS$", "-test.v")
		cmd.Env = append(os.Environ(), "PHASE_SHIM_CACHE_ROFS_CHILD="+mode, "PHASE_SHIM_CACHE_ROFS_ROOT="+root)
		cmd.SysProcAttr = &unix.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ROFS-CHILD-OK") {
			t.Errorf("%s: child failed: %v\n%s", mode, err, out)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "cache")); len(ents) != 0 {
		t.Errorf("the child's tmpfs leaked into the parent: %d entries", len(ents))
	}
}

func roFSChild(mode string) {
	fail := func(format string, a ...any) {
		fmt.Printf("ROFS-CHILD-FAIL: "+format+"\n", a...)
		os.Exit(1)
	}
	root := os.Getenv("PHASE_SHIM_CACHE_ROFS_ROOT")
	dir := filepath.Join(root, "cache")
	// Go made the new namespace's mounts private, so none of this is seen
	// outside the child.
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		fail("bind: %v", err)
	}
	if err := unix.Mount("", root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		fail("remount ro: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "probe"), nil, 0o600); err == nil {
		fail("the root is writable")
	}
	switch mode {
	case "tmpfs":
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700,size=4m"); err != nil {
			fail("tmpfs: %v", err)
		}
	case "readonly":
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "mode=0700,size=4m"); err != nil {
			fail("tmpfs: %v", err)
		}
	}
	c := Cache{Dir: dir}
	err := c.Save(cacheTokenA, ctxProd, sampleResult())
	switch mode {
	case "tmpfs":
		if err != nil {
			fail("save on tmpfs: %v", err)
		}
		r, _, err := c.Load(cacheTokenA, ctxProd)
		if err != nil {
			fail("load: %v", err)
		}
		if d := diffSecrets(r.Secrets, sampleResult().Secrets); d != "" {
			fail("round trip: %s", d)
		}
	case "readonly":
		if !errors.Is(err, unix.EROFS) {
			fail("save on a read-only dir: got %v, want EROFS", err)
		}
		// The library's answer to that is a warning, not a failed start.
		s := phasetest.New(phasetest.DemoFixture())
		defer s.Close()
		res, err := FetchPhaseCached(context.Background(), PhaseOptions{Token: s.Token("shop", "service_v2"),
			Host: s.URL(), App: "shop", Env: "Production"}, c)
		if err != nil {
			fail("fetch with a read-only cache: %v", err)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "read-only file system") {
			fail("warnings %q", res.Warnings)
		}
	}
	fmt.Println("ROFS-CHILD-OK")
}

// deadlineTransport records the deadline of every request's context.
type deadlineTransport struct {
	base      http.RoundTripper
	mu        sync.Mutex
	deadlines []time.Time
}

func (d *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if dl, ok := r.Context().Deadline(); ok {
		d.mu.Lock()
		d.deadlines = append(d.deadlines, dl)
		d.mu.Unlock()
	}
	return d.base.RoundTrip(r)
}

// With a cache to fall back on, the live fetch ends before the caller's
// deadline, so a cached start is not late; without one it may use all of it.
func TestFetchPhaseCachedDeadlineReserve(t *testing.T) {
	f := newCachedFixture(t)
	f.o.AttemptTimeout = time.Hour // only the overall deadline bounds the attempt
	check := func(wantReserve bool) {
		dt := &deadlineTransport{base: http.DefaultTransport}
		o := f.o
		o.HTTPClient = &http.Client{Transport: dt}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if _, err := FetchPhaseCached(ctx, o, f.c); err != nil {
			t.Fatal(err)
		}
		dl, _ := ctx.Deadline()
		if len(dt.deadlines) == 0 {
			t.Fatal("no request carried a deadline")
		}
		// A reserve of one second (an hour / 20, capped), so at least
		// half a second earlier whatever the clock did in between.
		gotReserve := dl.Sub(dt.deadlines[0]) > 500*time.Millisecond
		if gotReserve != wantReserve {
			t.Errorf("live deadline %s before the caller's; want a reserve: %v", dl.Sub(dt.deadlines[0]), wantReserve)
		}
	}
	check(false) // first start: no cache yet
	check(true)  // the cache written by the first start is there now
}

// A hostile writer of the cache directory cannot hang or bloat a start:
// a FIFO, a symlink (to /dev/zero or to a valid entry) or a directory in
// the entry's place is rejected without blocking.
func TestCacheHostileEntries(t *testing.T) {
	c := testCache(t)
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	p := c.path(fileID(cacheTokenA, ctxProd))
	good := p + ".good"
	if err := os.Rename(p, good); err != nil {
		t.Fatal(err)
	}
	for name, mk := range map[string]func() error{
		"fifo":              func() error { return unix.Mkfifo(p, 0o600) },
		"symlink to zero":   func() error { return os.Symlink("/dev/zero", p) },
		"symlink to a file": func() error { return os.Symlink(good, p) },
		"directory":         func() error { return os.Mkdir(p, 0o700) },
	} {
		os.RemoveAll(p)
		if err := mk(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Load(cacheTokenA, ctxProd); !errors.Is(err, ErrCacheCorrupt) {
			t.Errorf("%s: got %v, want ErrCacheCorrupt", name, err)
		}
	}
	// Save replaces whatever is there (rename does not follow a link).
	os.RemoveAll(p)
	if err := os.Symlink(good, p); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after save: %v, %v", fi.Mode(), err)
	}
}

// With Cache.FallbackAfter, an outage with a fresh cache entry falls back
// to it once the cutoff passes instead of retrying until the caller's far
// deadline; without a usable entry the live fetch keeps the whole deadline.
// Behaviour, not timing: the caller's deadline is minutes away (it only
// stops a hang), and a server that answers after a delay longer than the
// cutoff shows which path ran — the cached copy with a fresh entry, the
// live answer without one.
func TestFetchPhaseCachedFallbackAfter(t *testing.T) {
	const cutoff = 100 * time.Millisecond
	const slow = 700 * time.Millisecond // > cutoff, well under the cap
	type server int
	const (
		refused server = iota // nothing listens
		silent                // accepts, never answers
		slowOK                // answers after slow
	)
	type entry int
	const (
		none       entry = iota
		fresh            // saved now
		oldMtime         // saved 2 h ago (MaxAge 1 h), mtime says so too
		touchedOld       // saved 2 h ago, mtime touched to now
	)
	for _, tc := range []struct {
		name      string
		srv       server
		entry     entry
		wantCache bool // else: wantLive when the server answers, an error when not
		wantLive  bool
	}{
		{name: "refused, fresh cache", srv: refused, entry: fresh, wantCache: true},
		{name: "never answers, fresh cache", srv: silent, entry: fresh, wantCache: true},
		{name: "slow, fresh cache: cut off, cached", srv: slowOK, entry: fresh, wantCache: true},
		{name: "slow, no cache: the whole deadline, live", srv: slowOK, entry: none, wantLive: true},
		{name: "slow, stale cache: the whole deadline, live", srv: slowOK, entry: oldMtime, wantLive: true},
		// A faked mtime cuts the fetch short, the entry fails to load, the
		// fetch resumes: a restarted fetch, never a stale start.
		{name: "slow, stale cache with a fresh mtime: resumed, live", srv: slowOK, entry: touchedOld, wantLive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := phasetest.New(phasetest.DemoFixture())
			t.Cleanup(s.Close)
			tok := s.Token("shop", "service_v2")
			o := PhaseOptions{Token: tok, Host: s.URL(), App: "shop", Env: "Production", Path: "/",
				RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond} // no attempt cap: the deadline bounds retries
			switch tc.srv {
			case refused:
				o.Host = closedPort(t)
			case silent:
				s.SetLatency(time.Hour, 0)
			case slowOK:
				s.SetLatency(slow, 0)
			}
			c := testCache(t)
			c.FallbackAfter = cutoff
			cc := CacheContextOf(o)
			if tc.entry != none {
				saver := c
				if tc.entry != fresh {
					saver.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
				}
				if err := saver.Save(tok, cc, sampleResult()); err != nil {
					t.Fatal(err)
				}
				if tc.entry == touchedOld {
					now := time.Now()
					if err := os.Chtimes(c.path(fileID(tok, cc)), now, now); err != nil {
						t.Fatal(err)
					}
				}
			}
			dt := &deadlineTransport{base: http.DefaultTransport}
			o.HTTPClient = &http.Client{Transport: dt}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			got, err := FetchPhaseCached(ctx, o, c)
			after := time.Now()
			switch {
			case tc.wantCache:
				if err != nil || !got.FromCache {
					t.Fatalf("want the cached copy, got %v", err)
				}
				if d := diffSecrets(got.Secrets, sampleResult().Secrets); d != "" {
					t.Error(d)
				}
				if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "no live answer within 100ms") {
					t.Errorf("warnings %q", got.Warnings)
				}
				// Every attempt was bounded by the cutoff, not by the
				// caller's deadline (a comparison of deadlines, not a
				// measurement: each is "now + cutoff" taken before after).
				for _, dl := range dt.deadlines {
					if dl.After(after.Add(cutoff)) {
						t.Errorf("an attempt had a deadline %s past the cutoff", dl.Sub(after.Add(cutoff)))
					}
				}
			case tc.wantLive:
				if err != nil || got.FromCache {
					t.Fatalf("want the live answer, got FromCache %v, %v", got != nil && got.FromCache, err)
				}
				// The live answer refreshed the entry.
				if _, _, err := c.Load(tok, cc); err != nil {
					t.Errorf("after a live fetch: %v", err)
				}
			}
			if tc.srv == refused && len(dt.deadlines) < 2 {
				// Refusals are retried until the cutoff, not given up on.
				t.Errorf("%d attempts, want retries until the cutoff", len(dt.deadlines))
			}
		})
	}
}

// Save stamps the file with the entry's SavedAt, which looksFresh reads.
func TestCacheMtimeIsSavedAt(t *testing.T) {
	c := testCache(t)
	saved := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return saved }
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.path(fileID(cacheTokenA, ctxProd)))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(saved) {
		t.Errorf("mtime %s, want %s", fi.ModTime().UTC(), saved)
	}
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {59 * time.Minute, true}, {61 * time.Minute, false}, {-30 * time.Second, true}, {-2 * time.Minute, false}} {
		c.now = func() time.Time { return saved.Add(tc.after) }
		if got := c.looksFresh(cacheTokenA, ctxProd); got != tc.want {
			t.Errorf("%s after saving: looksFresh %v, want %v", tc.after, got, tc.want)
		}
	}
	if (Cache{Dir: c.Dir}).looksFresh(cacheTokenB, ctxProd) {
		t.Error("another token's entry looks fresh")
	}
}
