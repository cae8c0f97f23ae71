package phasetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// testClient is a minimal independent Phase client built on phasecrypto,
// so the emulator's ciphertexts are checked by the real decryption chain.
type testClient struct {
	t     *testing.T
	s     *Server
	tok   phasecrypto.Token
	camel bool
}

func newClient(t *testing.T, s *Server, token string) *testClient {
	t.Helper()
	tok, err := phasecrypto.ParseToken(token)
	if err != nil {
		t.Fatalf("token from the emulator does not parse: %v", err)
	}
	return &testClient{t: t, s: s, tok: tok}
}

func (c *testClient) do(method, path string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.s.URL()+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", c.tok.AuthorizationHeader())
	if c.camel {
		req.Header.Set("X-Use-Camel-Case", "true")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.s.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

type tokensResp struct {
	WrappedKeyShare string `json:"wrapped_key_share"`
	UserID          string `json:"user_id"`
	AccountID       string `json:"account_id"`
	Organisation    struct{ ID, Name string }
	Apps            []struct {
		ID, Name, Encryption string
		EnvironmentKeys      []struct {
			ID          string `json:"id"`
			Environment struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				EnvType string `json:"env_type"`
			} `json:"environment"`
			IdentityKey string `json:"identity_key"`
			WrappedSeed string `json:"wrapped_seed"`
			WrappedSalt string `json:"wrapped_salt"`
		} `json:"environment_keys"`
	}
}

type envKeys struct {
	id       string
	pk, sk   [32]byte
	saltHex  string
	pkHexSrv string
}

func (c *testClient) session() tokensResp {
	c.t.Helper()
	st, _, b := c.do("GET", "/service/secrets/tokens/", nil, nil)
	if st != 200 {
		c.t.Fatalf("tokens: status %d: %s", st, b)
	}
	var tr tokensResp
	if err := json.Unmarshal(b, &tr); err != nil {
		c.t.Fatalf("tokens: %v", err)
	}
	return tr
}

// keys runs the whole client chain: unwrap the share, rebuild the account
// key, decrypt seed and salt, derive the environment key pair.
func (c *testClient) keys(appName, envName string) envKeys {
	c.t.Helper()
	tr := c.session()
	apk, ask, err := c.tok.AccountKeys(tr.WrappedKeyShare)
	if err != nil {
		c.t.Fatalf("account keys: %v", err)
	}
	for _, a := range tr.Apps {
		if a.Name != appName {
			continue
		}
		for _, ek := range a.EnvironmentKeys {
			if ek.Environment.Name != envName {
				continue
			}
			seed, err := phasecrypto.Decrypt(ek.WrappedSeed, ask, apk)
			if err != nil {
				c.t.Fatalf("seed: %v", err)
			}
			salt, err := phasecrypto.Decrypt(ek.WrappedSalt, ask, apk)
			if err != nil {
				c.t.Fatalf("salt: %v", err)
			}
			seedBytes, err := hex.DecodeString(string(seed))
			if err != nil {
				c.t.Fatalf("seed is not hex")
			}
			pk, sk := phasecrypto.SeedKeyPair(seedBytes)
			return envKeys{id: ek.Environment.ID, pk: pk, sk: sk, saltHex: string(salt), pkHexSrv: ek.IdentityKey}
		}
	}
	c.t.Fatalf("no keys for %s/%s in the tokens response", appName, envName)
	return envKeys{}
}

type plain struct {
	Path, Key, Value string
	Overridden       bool
}

type wireSecret struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Comment   string `json:"comment"`
	Path      string `json:"path"`
	Tags      []string
	Type      string `json:"type"`
	KeyDigest string `json:"key_digest"`
	KeyDigCam string `json:"keyDigest"`
	Version   int    `json:"version"`
	Override  *struct {
		Value    string `json:"value"`
		IsActive *bool  `json:"is_active"`
		IsActCam *bool  `json:"isActive"`
	} `json:"override"`
	Lease *struct {
		Credentials []struct{ Key, Value string }
	} `json:"lease"`
	KeyMap []struct {
		KeyName string `json:"key_name"`
	} `json:"key_map"`
}

// read GETs the environment's secrets and decrypts them.
func (c *testClient) read(k envKeys, hdr map[string]string) ([]plain, []wireSecret) {
	c.t.Helper()
	h := map[string]string{"Environment": k.id}
	for a, b := range hdr {
		h[a] = b
	}
	st, _, b := c.do("GET", "/service/secrets/", h, nil)
	if st != 200 {
		c.t.Fatalf("secrets: status %d: %s", st, b)
	}
	var ws []wireSecret
	if err := json.Unmarshal(b, &ws); err != nil {
		c.t.Fatalf("secrets: %v", err)
	}
	var out []plain
	for _, w := range ws {
		if w.Type == "dynamic" {
			continue
		}
		key, err := phasecrypto.Decrypt(w.Key, k.sk, k.pk)
		if err != nil {
			c.t.Fatalf("secret %s key: %v", w.ID, err)
		}
		ct := w.Value
		over := false
		if w.Override != nil && ((w.Override.IsActive != nil && *w.Override.IsActive) || (w.Override.IsActCam != nil && *w.Override.IsActCam)) {
			ct, over = w.Override.Value, true
		}
		val, err := phasecrypto.Decrypt(ct, k.sk, k.pk)
		if err != nil {
			c.t.Fatalf("secret %s value: %v", w.ID, err)
		}
		out = append(out, plain{Path: w.Path, Key: string(key), Value: string(val), Overridden: over})
	}
	return out, ws
}

func (c *testClient) encrypt(k envKeys, s string) string {
	c.t.Helper()
	ct, err := phasecrypto.Encrypt([]byte(s), hex.EncodeToString(k.pk[:]), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	return ct
}

// compareSecrets reports differences by key name and length only.
func compareSecrets(t *testing.T, got, want []plain) {
	t.Helper()
	idx := func(ps []plain) map[string]plain {
		m := map[string]plain{}
		for _, p := range ps {
			m[p.Path+" "+p.Key] = p
		}
		return m
	}
	g, w := idx(got), idx(want)
	var names []string
	for k := range w {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		gp, ok := g[k]
		if !ok {
			t.Errorf("%q: missing", k)
			continue
		}
		if gp.Value != w[k].Value {
			t.Errorf("%q: %s", k, lengthDiff(gp.Value, w[k].Value))
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%q: unexpected", k)
		}
	}
}

func lengthDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d bytes, first difference at byte %d", len(got), len(want), i)
}

func fixtureSecrets(f Fixture, appName, envName string) []plain {
	for _, a := range f.Apps {
		for _, e := range a.Envs {
			if a.Name == appName && e.Name == envName {
				var out []plain
				for _, s := range e.Secrets {
					out = append(out, plain{Path: normalizePath(s.Path), Key: s.Key, Value: s.Value})
				}
				return out
			}
		}
	}
	return nil
}
