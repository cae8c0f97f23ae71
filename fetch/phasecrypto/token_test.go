package phasecrypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseToken(t *testing.T) {
	a := strings.Repeat("a", 64)
	b := strings.Repeat("B", 64)
	c := strings.Repeat("0", 64)
	d := strings.Repeat("f", 64)
	tail := ":" + a + ":" + b + ":" + c + ":" + d
	cases := []struct {
		in     string
		want   Token
		header string
		err    bool
	}{
		{in: "pss_service:v1" + tail, want: Token{"pss_service", "v1", a, b, c, d}, header: "Bearer Service " + a},
		{in: "pss_service:v2" + tail, want: Token{"pss_service", "v2", a, b, c, d}, header: "Bearer ServiceAccount " + a},
		{in: "pss_user:v1" + tail, want: Token{"pss_user", "v1", a, b, c, d}, header: "Bearer User " + a},
		{in: "pss_service:v3" + tail, want: Token{"pss_service", "v3", a, b, c, d}, header: "Bearer Service " + a},
		{in: "  pss_user:v1" + tail + "\n", want: Token{"pss_user", "v1", a, b, c, d}, header: "Bearer User " + a},
		{in: "", err: true},
		{in: "pss_env:v1" + tail, err: true},
		{in: "pss_service:1" + tail, err: true},
		{in: "pss_service:v" + tail, err: true},
		{in: "pss_service:vx" + tail, err: true},
		{in: "pss_service:v1" + tail + ":" + a, err: true},
		{in: "pss_service:v1:" + a + ":" + b + ":" + c, err: true},
		{in: "pss_service:v1:" + a[:63] + ":" + b + ":" + c + ":" + d, err: true},
		{in: "pss_service:v1:" + a + ":" + b + ":" + c + ":" + strings.Repeat("g", 64), err: true},
		{in: "Bearer pss_service:v1" + tail, err: true},
	}
	for i, tc := range cases {
		got, err := ParseToken(tc.in)
		if tc.err {
			if !errors.Is(err, ErrToken) {
				t.Errorf("case %d: got err %v, want ErrToken", i, err)
			}
			if err != nil && strings.Contains(err.Error(), a[:16]) {
				t.Errorf("case %d: error echoes token material", i)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("case %d: token fields differ", i)
		}
		if h := got.AuthorizationHeader(); h != tc.header {
			t.Errorf("case %d: header type mismatch (%d bytes, want %d)", i, len(h), len(tc.header))
		}
	}
}

func TestTokenStringRedacts(t *testing.T) {
	tok, err := ParseToken(gosdkToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok)} {
		for _, f := range []string{tok.Bearer, tok.Share0Hex, tok.WrapKeyHex} {
			if strings.Contains(s, f) {
				t.Fatal("formatted token contains key material")
			}
		}
	}
}

func TestAccountKeysMismatch(t *testing.T) {
	tok, err := ParseToken(gosdkToken)
	if err != nil {
		t.Fatal(err)
	}
	var tf tokensFile
	loadJSON(t, "tokens_gosdk_user.json", &tf)
	// Another account's public key with this account's shares.
	tok.PublicKeyHex = strings.Repeat("11", 32)
	if _, _, err := tok.AccountKeys(tf.WrappedKeyShare); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("got %v, want ErrKeyMismatch", err)
	}
	tok, _ = ParseToken(gosdkToken)
	if _, _, err := tok.AccountKeys(tf.WrappedKeyShare[:100]); !errors.Is(err, ErrCiphertext) {
		t.Errorf("truncated share: got %v, want ErrCiphertext", err)
	}
	if _, _, err := tok.AccountKeys("zz"); !errors.Is(err, ErrCiphertext) {
		t.Errorf("non-hex share: got %v, want ErrCiphertext", err)
	}
}

// FuzzDecodeHex32: the constant-time decoder agrees with encoding/hex on
// every 64-byte input (and refuses every other length).
func FuzzDecodeHex32(f *testing.F) {
	f.Add([]byte(strings.Repeat("0aF9", 16)))
	f.Add([]byte(strings.Repeat("g0", 32)))
	f.Add([]byte(strings.Repeat("/:@`GFgf", 8)))
	f.Add([]byte("00"))
	f.Fuzz(func(t *testing.T, text []byte) {
		got, ok := DecodeHex32(text)
		want, err := hex.DecodeString(string(text))
		wantOK := err == nil && len(want) == 32
		if ok != wantOK {
			t.Fatalf("%d-byte input: ok %v, encoding/hex %v", len(text), ok, wantOK)
		}
		if ok && !bytes.Equal(got[:], want) {
			t.Fatalf("%d-byte input: decoded differently from encoding/hex", len(text))
		}
	})
}

func TestUnhexEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		v, ok := unhexCT(byte(c))
		want, err := hex.DecodeString(string([]byte{'0', byte(c)}))
		if (ok == 1) != (err == nil) || (err == nil && v != want[0]) {
			t.Errorf("byte %#x: got %d valid %d", c, v, ok)
		}
	}
}
