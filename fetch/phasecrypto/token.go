// Package phasecrypto implements the cryptography of the Phase secrets manager
// client: token parsing, the key-share unwrap, environment key pairs, key
// digests and the "ph:v1" ciphertext format (X25519 + BLAKE2b +
// XChaCha20-Poly1305). It has no network code and never logs; errors never
// carry key material, plaintexts or tokens.
package phasecrypto

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// ErrToken is wrapped by every ParseToken failure. The message describes what
// is wrong with the shape, never the token text.
var ErrToken = errors.New("malformed phase token")

// Token is a parsed Phase token. Its fields are secret: never format a Token
// with %v into anything a user can see (String redacts, as a safety net).
type Token struct {
	Prefix       string // "pss_service" or "pss_user"
	Version      string // "v1", "v2", ...
	Bearer       string // field 2: the only part sent to the server
	PublicKeyHex string // field 3: the holder's X25519 public key
	Share0Hex    string // field 4: client-held XOR share of the private key
	WrapKeyHex   string // field 5: key that unwraps the server-held share
}

// ParseToken accepts the six-field pss_service / pss_user token forms. Leading
// and trailing white space (a newline from a mounted secret file) is ignored.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return Token{}, fmt.Errorf("%w: want 6 colon-separated fields, got %d", ErrToken, len(parts))
	}
	t := Token{Prefix: parts[0], Version: parts[1], Bearer: parts[2], PublicKeyHex: parts[3], Share0Hex: parts[4], WrapKeyHex: parts[5]}
	if t.Prefix != "pss_service" && t.Prefix != "pss_user" {
		// The prefix is not secret, but an arbitrary string could be a pasted
		// value; describe it instead of echoing it.
		return Token{}, fmt.Errorf("%w: prefix is not pss_service or pss_user", ErrToken)
	}
	if !validVersion(t.Version) {
		return Token{}, fmt.Errorf("%w: version field is not v<number>", ErrToken)
	}
	names := [...]string{"bearer", "public key", "key share", "wrap key"}
	for i, f := range parts[2:] {
		if len(f) != 64 || !isHex(f) {
			return Token{}, fmt.Errorf("%w: %s field is not 64 hex characters", ErrToken, names[i])
		}
	}
	return t, nil
}

func validVersion(v string) bool {
	if len(v) < 2 || v[0] != 'v' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Type is the token type the server expects in the Authorization header.
// pss_service versions other than v2 map to "Service", as in the Go SDK and
// both CLIs (the Node SDK says "ServiceAccount" for v3+; no such token exists).
func (t Token) Type() string {
	switch {
	case t.Prefix == "pss_user":
		return "User"
	case t.Version == "v2":
		return "ServiceAccount"
	default:
		return "Service"
	}
}

// AuthorizationHeader is the exact Authorization header value:
// "Bearer <Type> <bearer hex>".
func (t Token) AuthorizationHeader() string {
	return "Bearer " + t.Type() + " " + t.Bearer
}

// String redacts everything after the version so an accidental %v of a Token
// cannot leak it.
func (t Token) String() string { return t.Prefix + ":" + t.Version + ":<redacted>" }

// GoString redacts for %#v as well.
func (t Token) GoString() string { return "phasecrypto.Token{" + t.String() + "}" }

// AccountKeys rebuilds the holder's X25519 key pair from the token and the
// server's wrapped_key_share: unwrap share 1, XOR it with share 0. The public
// key is the token's field 3; it is checked against the reconstructed private
// key so a wrong share is caught here rather than as a confusing decryption
// failure later.
func (t Token) AccountKeys(wrappedKeyShareHex string) (pk, sk [32]byte, err error) {
	var wrapKey [32]byte
	if err := decodeHex32(t.WrapKeyHex, &wrapKey); err != nil {
		return pk, sk, fmt.Errorf("%w: wrap key: %v", ErrToken, err)
	}
	share1Hex, err := UnwrapShare(wrappedKeyShareHex, wrapKey)
	if err != nil {
		return pk, sk, err
	}
	var s0, s1 [32]byte
	if err := decodeHex32(t.Share0Hex, &s0); err != nil {
		return pk, sk, fmt.Errorf("%w: key share: %v", ErrToken, err)
	}
	if err := decodeHex32(share1Hex, &s1); err != nil {
		return pk, sk, fmt.Errorf("%w: unwrapped key share is not 32 bytes of hex", ErrCiphertext)
	}
	for i := range sk {
		sk[i] = s0[i] ^ s1[i]
	}
	if err := decodeHex32(t.PublicKeyHex, &pk); err != nil {
		return pk, sk, fmt.Errorf("%w: public key: %v", ErrToken, err)
	}
	derived, err := publicKey(sk)
	if err != nil || derived != pk {
		return [32]byte{}, [32]byte{}, fmt.Errorf("%w: reconstructed private key does not match the token's public key", ErrKeyMismatch)
	}
	return pk, sk, nil
}

// ErrKeyMismatch means the token's two key shares do not combine into the key
// pair named by the token: the wrong token for this account, or tampering.
var ErrKeyMismatch = errors.New("key share mismatch")

func decodeHex32(s string, out *[32]byte) error {
	if len(s) != 64 {
		return errors.New("want 64 hex characters")
	}
	k, ok := DecodeHex32([]byte(s))
	if !ok {
		return errors.New("not hex")
	}
	*out = k
	return nil
}

// DecodeHex32 decodes 64 hex characters (either case) into 32 bytes in
// constant time: key shares, wrap keys and seeds travel as hex text, and
// their characters must not steer branches or table lookups the way
// encoding/hex's do. Only the length, which is public, is checked early.
func DecodeHex32(text []byte) (out [32]byte, ok bool) {
	if len(text) != 64 {
		return out, false
	}
	valid := 1
	for i := range out {
		hi, v1 := unhexCT(text[2*i])
		lo, v2 := unhexCT(text[2*i+1])
		valid &= v1 & v2
		out[i] = hi<<4 | lo
	}
	if valid != 1 {
		return [32]byte{}, false
	}
	return out, true
}

// unhexCT maps one hex character to its value without data-dependent
// branches; valid is 1 for [0-9a-fA-F], else 0.
func unhexCT(c byte) (val byte, valid int) {
	x := int(c)
	digit := subtle.ConstantTimeLessOrEq('0', x) & subtle.ConstantTimeLessOrEq(x, '9')
	lower := x | 0x20
	letter := subtle.ConstantTimeLessOrEq('a', lower) & subtle.ConstantTimeLessOrEq(lower, 'f')
	v := subtle.ConstantTimeSelect(digit, x-'0', 0) | subtle.ConstantTimeSelect(letter, lower-'a'+10, 0)
	return byte(v), digit | letter
}
