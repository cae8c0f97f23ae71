package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

// recorded is one real exchange with the emulator: its tokens answer, its
// secrets answer for shop/Production, the token, and the fixture's
// plaintext values (which must never show up in an error).
type recorded struct {
	token   string
	tokens  []byte
	secrets []byte
	values  []string
}

var (
	recordOnce sync.Once
	recording  recorded
	recordErr  error
)

func record() (recorded, error) {
	recordOnce.Do(func() {
		s := phasetest.New(phasetest.DemoFixture(), phasetest.WithSeed(7))
		defer s.Close()
		tok := s.Token("shop", "service_v2")
		ctx := context.Background()
		// Capture the bodies by letting the real client fetch through a
		// recording transport.
		rt := &recordingTransport{base: s.Client().Transport, bodies: map[string][]byte{}}
		_, err := FetchPhase(ctx, PhaseOptions{Token: tok, Host: s.URL(), App: "shop", Env: "Production",
			References: RefRaw, HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			recordErr = err
			return
		}
		vals, err := s.Values("shop", "Production", "")
		if err != nil {
			recordErr = err
			return
		}
		recording = recorded{token: tok, tokens: rt.bodies["/service/secrets/tokens/"], secrets: rt.bodies["/service/secrets/"]}
		for _, v := range vals {
			if len(v) >= 8 {
				recording.values = append(recording.values, v)
			}
		}
		if recording.tokens == nil || recording.secrets == nil {
			recordErr = errors.New("the emulator exchange was not recorded")
		}
	})
	return recording, recordErr
}

type recordingTransport struct {
	base   http.RoundTripper
	bodies map[string][]byte
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	t.bodies[r.URL.Path] = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// cannedTransport answers the tokens request with a real body and the
// secrets request with the fuzzer's; no socket is involved.
type cannedTransport struct{ tokens, secrets []byte }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := t.secrets
	if strings.HasSuffix(r.URL.Path, "/tokens/") {
		body = t.tokens
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

var fetchClasses = []error{ErrData, ErrUnavailable, ErrProtocol, ErrAuth, ErrConfig}

func typed(err error) bool {
	for _, c := range fetchClasses {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// FuzzSecretsBody feeds a fuzzed GET /service/secrets/ answer, after a
// genuine tokens answer, through the whole client: decoding, key
// selection, parallel decryption, references. Whatever the body, FetchPhase
// must not panic, must fail with one of the typed classes (so main picks a
// documented exit code and the command never starts), and its error must
// carry neither the token nor a fixture value.
//
// One run costs a few milliseconds (two full decryptions), so minimizing
// an interesting input takes the default minute: use -fuzzminimizetime=2s
// with a short -fuzztime.
func FuzzSecretsBody(f *testing.F) {
	rec, err := record()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec.secrets)
	f.Add(rec.secrets[:len(rec.secrets)/2])
	f.Add(bytes.Replace(rec.secrets, []byte(`"ph:v1:`), []byte(`"ph:v2:`), 1))
	f.Add(bytes.Replace(rec.secrets, []byte(`"key"`), []byte(`"keyDigest"`), -1))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{}]`))
	f.Add([]byte(`[{"id":1,"key":"ph:v1::","value":null}]`))
	f.Add([]byte(`{"secrets":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte("\xef\xbb\xbf[]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, refs := range []string{RefStrict, RefLenient} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := FetchPhase(ctx, PhaseOptions{Token: rec.token, Host: "http://phase.invalid",
				App: "shop", Env: "Production", References: refs, MaxAttempts: 1,
				HTTPClient: &http.Client{Transport: cannedTransport{tokens: rec.tokens, secrets: body}}})
			cancel()
			if err == nil {
				if res == nil {
					t.Fatal("nil result without an error")
				}
				continue
			}
			if res != nil {
				t.Fatal("a result together with an error")
			}
			if !typed(err) {
				t.Fatalf("untyped error (no exit code would match): %v", err)
			}
			msg := err.Error()
			if strings.Contains(msg, rec.token) {
				t.Fatal("the error contains the token")
			}
			for i, v := range rec.values {
				if strings.Contains(msg, v) {
					t.Fatalf("the error contains fixture value #%d (%d bytes)", i, len(v))
				}
			}
		}
	})
}

// FuzzCacheFile: a cache file is read from a directory others may write to
// (a shared volume); whatever it holds, opening it never panics and fails
// with ErrCacheCorrupt unless it authenticates under the token.
func FuzzCacheFile(f *testing.F) {
	c := Cache{Dir: f.TempDir()}
	if err := c.Save(cacheTokenA, ctxProd, sampleResult()); err != nil {
		f.Fatal(err)
	}
	id := fileID(cacheTokenA, ctxProd)
	good, err := os.ReadFile(c.path(id))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(cacheMagic)+30])
	f.Add([]byte(cacheMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := openEntry(cacheTokenA, id, data)
		if err != nil {
			if !errors.Is(err, ErrCacheCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		// Any file this token wrote for this context authenticates (each
		// fuzz worker saved its own); anything else would be a forgery of
		// XChaCha20-Poly1305. So an opened file holds what Save was given.
		if d := diffSecrets(e.toSecrets(), sampleResult().Secrets); d != "" {
			t.Fatalf("a modified file (%d bytes) opened: %s", len(data), d)
		}
	})
}
