package phasecrypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	f.Add(gosdkToken)
	f.Add("pss_service:v2:" + strings.Repeat("a", 64) + ":" + strings.Repeat("b", 64) + ":" + strings.Repeat("c", 64) + ":" + strings.Repeat("d", 64))
	f.Add("pss_user:v1:::::")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if len(s) >= 64 && strings.Contains(err.Error(), s) {
				t.Fatal("error echoes the input")
			}
			return
		}
		h := tok.AuthorizationHeader()
		if !strings.HasPrefix(h, "Bearer ") || strings.Count(h, " ") != 2 {
			t.Fatalf("malformed header shape")
		}
		// Every accepted token's key fields decode as 32 bytes.
		for _, f := range []string{tok.Bearer, tok.PublicKeyHex, tok.Share0Hex, tok.WrapKeyHex} {
			if b, err := hex.DecodeString(f); err != nil || len(b) != 32 {
				t.Fatal("accepted a field that is not 32 bytes of hex")
			}
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	pk, sk := SeedKeyPair([]byte("fuzz recipient"))
	good, _ := Encrypt([]byte("value"), hex.EncodeToString(pk[:]), bytes.NewReader(bytes.Repeat([]byte{9}, 56)))
	f.Add(good)
	f.Add("ph:v1::")
	f.Add("ph:v1:" + strings.Repeat("0", 64) + ":AAAA")
	f.Add("ph:v1:" + strings.Repeat("a", 64) + ":" + strings.Repeat("A", 56))
	f.Add(":::")
	f.Fuzz(func(t *testing.T, ct string) {
		// Anyone can encrypt to pk, so success is not a failure; the
		// property is that no input panics and failures are typed.
		pt, err := Decrypt(ct, sk, pk)
		if err != nil && !errors.Is(err, ErrCiphertext) {
			t.Fatalf("untyped error: %v", err)
		}
		parts := strings.Split(ct, ":")
		if err != nil {
			// The message describes the failure; it never echoes the
			// payload (it could be a value from a misbehaving server).
			if p := parts[len(parts)-1]; len(p) >= 16 && strings.Contains(err.Error(), p) {
				t.Fatal("error echoes the payload")
			}
		} else {
			// Whatever opens was a well-formed ph:v1 string whose blob is
			// exactly plaintext ‖ tag ‖ nonce.
			if len(parts) != 4 || parts[0] != "ph" || parts[1] != "v1" || len(parts[2]) != 64 {
				t.Fatal("opened a ciphertext of the wrong shape")
			}
			blob, derr := base64.StdEncoding.DecodeString(parts[3])
			if derr != nil || len(blob) != len(pt)+tagSize+nonceSize {
				t.Fatalf("plaintext of %d bytes from a %d-byte blob", len(pt), len(blob))
			}
		}
		if _, err := UnwrapShare(ct, sk); err != nil && !errors.Is(err, ErrCiphertext) {
			t.Fatalf("untyped unwrap error: %v", err)
		}
	})
}
