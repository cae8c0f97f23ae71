package awsiam

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type sigv4Case struct {
	Name              string            `json:"name"`
	Published         bool              `json:"published"`
	Method            string            `json:"method"`
	URL               string            `json:"url"`
	Region            string            `json:"region"`
	Service           string            `json:"service"`
	Headers           map[string]string `json:"headers"`
	Body              string            `json:"body"`
	SignContentLength bool              `json:"sign_content_length"`
	SessionToken      string            `json:"session_token"`
	TokenAfterSigning string            `json:"token_after_signing"`
	CanonicalRequest  string            `json:"canonical_request"`
	StringToSign      string            `json:"string_to_sign"`
	StringToSignHash  string            `json:"string_to_sign_hash"`
	Scope             string            `json:"scope"`
	Authorization     string            `json:"authorization"`
	SignedHeaders     string            `json:"signed_headers"`
	Signature         string            `json:"signature"`
}

type sigv4File struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Time            string `json:"time"`
	SigningKey      struct {
		Date, Region, Service string
		Key                   string `json:"key"`
		StringToSign          string `json:"string_to_sign"`
		Signature             string `json:"signature"`
	} `json:"signing_key"`
	Cases []sigv4Case `json:"cases"`
}

func loadVectors(t *testing.T) sigv4File {
	t.Helper()
	data, err := os.ReadFile("testdata/sigv4.json")
	if err != nil {
		t.Fatal(err)
	}
	var f sigv4File
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// authParts splits an Authorization header into its three named parts.
func authParts(t *testing.T, h string) (cred, signed, sig string) {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		t.Fatalf("authorization header has no algorithm prefix")
	}
	for _, p := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	return
}

func TestSigV4Vectors(t *testing.T) {
	f := loadVectors(t)
	now, err := time.Parse(time.RFC3339, f.Time)
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	for _, c := range f.Cases {
		if c.Published {
			published++
		}
		t.Run(c.Name, func(t *testing.T) {
			req, err := http.NewRequest(c.Method, c.URL, bytes.NewReader([]byte(c.Body)))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.Headers {
				req.Header.Set(k, v)
			}
			creds := Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey, SessionToken: c.SessionToken}
			creq, sts := sign(req, []byte(c.Body), creds, c.Region, c.Service, now, signOptions{signContentLength: c.SignContentLength})
			if c.TokenAfterSigning != "" {
				req.Header.Set("X-Amz-Security-Token", c.TokenAfterSigning)
			}
			if c.CanonicalRequest != "" {
				if d := cmp.Diff(c.CanonicalRequest, creq); d != "" {
					t.Errorf("canonical request (-want +got):\n%s", d)
				}
			}
			if c.StringToSign != "" {
				if d := cmp.Diff(c.StringToSign, sts); d != "" {
					t.Errorf("string to sign (-want +got):\n%s", d)
				}
			}
			lines := strings.Split(sts, "\n")
			if c.StringToSignHash != "" && lines[len(lines)-1] != c.StringToSignHash {
				t.Errorf("string to sign hash = %s, want %s", lines[len(lines)-1], c.StringToSignHash)
			}
			if c.Scope != "" && lines[2] != c.Scope {
				t.Errorf("scope = %s, want %s", lines[2], c.Scope)
			}
			auth := req.Header.Get("Authorization")
			if c.Authorization != "" && auth != c.Authorization {
				t.Errorf("authorization = %q, want %q", auth, c.Authorization)
			}
			cred, signed, sig := authParts(t, auth)
			if want := f.AccessKeyID + "/" + lines[2]; cred != want {
				t.Errorf("credential = %s, want %s", cred, want)
			}
			if signed != c.SignedHeaders {
				t.Errorf("signed headers = %s, want %s", signed, c.SignedHeaders)
			}
			if sig != c.Signature {
				t.Errorf("signature = %s, want %s", sig, c.Signature)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
				t.Errorf("X-Amz-Date = %s", got)
			}
		})
	}
	// Guard against the data file silently losing the published suite.
	if published < 8 {
		t.Errorf("only %d published vectors in testdata", published)
	}
}

func TestSigningKeyVector(t *testing.T) {
	f := loadVectors(t)
	k := f.SigningKey
	key := signingKey(f.SecretAccessKey, k.Date, k.Region, k.Service)
	if got := hex.EncodeToString(key); got != k.Key {
		t.Errorf("signing key = %s, want %s", got, k.Key)
	}
	if got := hex.EncodeToString(hmacSHA256(key, []byte(k.StringToSign))); got != k.Signature {
		t.Errorf("signature = %s, want %s", got, k.Signature)
	}
}

func TestCredentialsNeverFormatted(t *testing.T) {
	c := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "very-secret-key", SessionToken: "session-token-value"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "very-secret-key") || strings.Contains(s, "session-token-value") {
			t.Errorf("formatted credentials leak a secret part (%d bytes)", len(s))
		}
	}
}

func TestCanonicalHelpers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a b", "a%20b"},
		{"~-_.AZaz09", "~-_.AZaz09"},
		{"a/b", "a%2Fb"},
		{"é", "%C3%A9"},
		{"+=&", "%2B%3D%26"},
	}
	for _, tt := range tests {
		if got := uriEncode(tt.in, true); got != tt.want {
			t.Errorf("uriEncode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := canonicalValue("  a   b  c "); got != "a b c" {
		t.Errorf("canonicalValue = %q", got)
	}
	if got := canonicalQuery("b=2&a=2&a=1&c"); got != "a=1&a=2&b=2&c=" {
		t.Errorf("canonicalQuery = %q", got)
	}
	for in, want := range map[string]string{"h:443": "h", "h:8443": "h:8443", "h": "h", "[::1]:443": "[::1]:443"} {
		if got := canonicalHostValue("https", in); got != want {
			t.Errorf("canonicalHostValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCanonicalQuery: canonicalisation is idempotent and its output only
// holds unreserved characters, '%XX', '=' and '&'.
func FuzzCanonicalQuery(f *testing.F) {
	f.Add("Param2=value2&Param1=value1")
	f.Add("a=%zz&b=+&c")
	f.Fuzz(func(t *testing.T, raw string) {
		once := canonicalQuery(raw)
		if twice := canonicalQuery(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, once, twice)
		}
		for i := 0; i < len(once); i++ {
			c := once[i]
			if !(c == '%' || c == '=' || c == '&' || c == '-' || c == '_' || c == '.' || c == '~' ||
				'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				t.Fatalf("byte %q left unencoded in %q", c, once)
			}
		}
	})
}
