package phasecrypto

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrCiphertext is wrapped by every failure to parse or authenticate a
// ciphertext or wrapped share. Callers treat it as possible tampering.
var ErrCiphertext = errors.New("bad ciphertext")

const (
	nonceSize = chacha20poly1305.NonceSizeX // 24
	tagSize   = chacha20poly1305.Overhead   // 16
)

// SeedKeyPair is libsodium's crypto_kx_seed_keypair: sk = BLAKE2b-256(seed)
// (unclamped; X25519 clamps internally), pk = X25519(sk, basepoint). Note the
// 32-byte digest length is part of BLAKE2b's parameter block, so this is not
// a truncated BLAKE2b-512.
func SeedKeyPair(seed []byte) (pk, sk [32]byte) {
	sk = blake2b.Sum256(seed)
	// X25519 with the base point cannot fail.
	pk, _ = publicKey(sk)
	return pk, sk
}

// NewKeyPair is crypto_kx_keypair: 32 bytes from rnd as the private key.
func NewKeyPair(rnd io.Reader) (pk, sk [32]byte, err error) {
	if _, err := io.ReadFull(rnd, sk[:]); err != nil {
		return pk, sk, fmt.Errorf("read random key: %w", err)
	}
	pk, err = publicKey(sk)
	return pk, sk, err
}

func publicKey(sk [32]byte) ([32]byte, error) {
	var pk [32]byte
	// crypto/ecdh derives the public key while parsing the private key:
	// one scalar multiplication (curve25519.X25519 with the base point
	// would do two).
	priv, err := ecdh.X25519().NewPrivateKey(sk[:])
	if err != nil {
		return pk, err
	}
	copy(pk[:], priv.PublicKey().Bytes())
	return pk, nil
}

// sessionKey returns the 32 bytes both sides use as the AEAD key: the client's
// tx and the server's rx, h[32:64] of BLAKE2b-512(q ‖ clientPk ‖ serverPk).
// In Phase the ephemeral sender is the "client" and the recipient the
// "server".
func sessionKey(priv *ecdh.PrivateKey, peerPk []byte, clientPk, serverPk []byte) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(peerPk)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid ephemeral public key", ErrCiphertext)
	}
	q, err := priv.ECDH(peer)
	if err != nil {
		// An all-zero shared secret: a low-order point, never produced by an
		// honest sender.
		return nil, fmt.Errorf("%w: invalid ephemeral public key", ErrCiphertext)
	}
	h, _ := blake2b.New512(nil)
	h.Write(q)
	h.Write(clientPk)
	h.Write(serverPk)
	sum := h.Sum(nil)
	return sum[32:64], nil
}

// Encrypt produces a "ph:v1:<epk hex>:<base64(ct‖tag‖nonce)>" string for the
// recipient. It reads exactly 32 bytes (the ephemeral private key) and then
// 24 bytes (the nonce) from rnd, so a fixed reader gives known answers.
func Encrypt(plaintext []byte, recipientPkHex string, rnd io.Reader) (string, error) {
	var rpk [32]byte
	if err := decodeHex32(recipientPkHex, &rpk); err != nil {
		return "", fmt.Errorf("recipient public key: %w", err)
	}
	var esk [32]byte
	if _, err := io.ReadFull(rnd, esk[:]); err != nil {
		return "", fmt.Errorf("read random key: %w", err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(esk[:])
	if err != nil {
		return "", err
	}
	epk := priv.PublicKey().Bytes()
	key, err := sessionKey(priv, rpk[:], epk, rpk[:])
	if err != nil {
		return "", fmt.Errorf("recipient public key: %w", err)
	}
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return "", fmt.Errorf("read random nonce: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return "", err
	}
	blob := aead.Seal(make([]byte, 0, len(plaintext)+tagSize+nonceSize), nonce[:], plaintext, nil)
	blob = append(blob, nonce[:]...)
	return "ph:v1:" + hex.EncodeToString(epk) + ":" + base64.StdEncoding.EncodeToString(blob), nil
}

// Decrypter opens ciphertexts for one key pair. Building it costs one
// X25519 (crypto/ecdh derives the public key when the private key is
// parsed); each Decrypt then costs one more, instead of two for the
// one-shot function. Safe for concurrent use.
type Decrypter struct {
	priv *ecdh.PrivateKey
	pk   [32]byte
}

// NewDecrypter prepares decryption for the key pair (sk, pk). pk is hashed
// into every session key, so it must be the public key belonging to sk.
func NewDecrypter(sk, pk [32]byte) (*Decrypter, error) {
	priv, err := ecdh.X25519().NewPrivateKey(sk[:])
	if err != nil {
		return nil, err
	}
	return &Decrypter{priv: priv, pk: pk}, nil
}

// Decrypt opens a "ph:v1" ciphertext. Errors wrap ErrCiphertext and say only
// what failed.
func (d *Decrypter) Decrypt(ct string) ([]byte, error) {
	epk, blob, err := parseCiphertext(ct)
	if err != nil {
		return nil, err
	}
	key, err := sessionKey(d.priv, epk[:], epk[:], d.pk[:])
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	n := len(blob) - nonceSize
	out, err := aead.Open(nil, blob[n:], blob[:n], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCiphertext)
	}
	return out, nil
}

// Decrypt opens a "ph:v1" ciphertext addressed to the key pair (sk, pk). The
// recipient's own public key is hashed into the session key, so pk must be the
// one belonging to sk. For many ciphertexts use a Decrypter.
func Decrypt(ct string, sk, pk [32]byte) ([]byte, error) {
	// Reject garbage before paying for the key setup.
	if _, _, err := parseCiphertext(ct); err != nil {
		return nil, err
	}
	d, err := NewDecrypter(sk, pk)
	if err != nil {
		return nil, err
	}
	return d.Decrypt(ct)
}

// parseCiphertext checks the shape before any public-key work, so garbage
// from a broken server costs nothing and never panics.
func parseCiphertext(ct string) (epk [32]byte, blob []byte, err error) {
	parts := strings.Split(ct, ":")
	if len(parts) != 4 {
		return epk, nil, fmt.Errorf("%w: want 4 colon-separated fields, got %d", ErrCiphertext, len(parts))
	}
	if parts[0] != "ph" {
		return epk, nil, fmt.Errorf("%w: prefix is not ph", ErrCiphertext)
	}
	if parts[1] != "v1" {
		return epk, nil, fmt.Errorf("%w: unsupported version", ErrCiphertext)
	}
	if err := decodeHex32(parts[2], &epk); err != nil {
		return epk, nil, fmt.Errorf("%w: ephemeral public key: %v", ErrCiphertext, err)
	}
	blob, err = base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return epk, nil, fmt.Errorf("%w: payload is not base64", ErrCiphertext)
	}
	if len(blob) < tagSize+nonceSize {
		return epk, nil, fmt.Errorf("%w: payload too short (%d bytes)", ErrCiphertext, len(blob))
	}
	return epk, blob, nil
}

// WrapShare seals the 64-character hex text of share 1 (the ASCII text, not
// the 32 raw bytes — that is what Phase stores) under wrapKey and returns
// hex(ct‖tag‖nonce). It reads the 24-byte nonce from rnd.
func WrapShare(wrapKey [32]byte, share1Hex string, rnd io.Reader) (string, error) {
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return "", fmt.Errorf("read random nonce: %w", err)
	}
	aead, err := chacha20poly1305.NewX(wrapKey[:])
	if err != nil {
		return "", err
	}
	blob := aead.Seal(nil, nonce[:], []byte(share1Hex), nil)
	blob = append(blob, nonce[:]...)
	return hex.EncodeToString(blob), nil
}

// UnwrapShare is the inverse of WrapShare; it returns share 1 as hex text.
func UnwrapShare(wrappedHex string, wrapKey [32]byte) (string, error) {
	blob, err := hex.DecodeString(wrappedHex)
	if err != nil {
		return "", fmt.Errorf("%w: wrapped key share is not hex", ErrCiphertext)
	}
	if len(blob) < tagSize+nonceSize {
		return "", fmt.Errorf("%w: wrapped key share too short (%d bytes)", ErrCiphertext, len(blob))
	}
	aead, err := chacha20poly1305.NewX(wrapKey[:])
	if err != nil {
		return "", err
	}
	n := len(blob) - nonceSize
	out, err := aead.Open(nil, blob[n:], blob[:n], nil)
	if err != nil {
		return "", fmt.Errorf("%w: wrapped key share failed to authenticate", ErrCiphertext)
	}
	return string(out), nil
}

// Digest is Phase's key blind index: hex(BLAKE2b-256 keyed with the ASCII
// bytes of the salt string over the key name). The salt is used as text (the
// 64 hex characters, 64 bytes), not decoded. An empty salt gives the unkeyed
// hash. Salts longer than BLAKE2b's 64-byte key limit cannot occur in Phase;
// they are hashed down first rather than panicking.
func Digest(key, saltHex string) string {
	k := []byte(saltHex)
	if len(k) > blake2b.Size {
		s := blake2b.Sum512(k)
		k = s[:]
	}
	h, err := blake2b.New256(k)
	if err != nil {
		// Unreachable: the key length is bounded above.
		panic("phasecrypto: blake2b key: " + err.Error())
	}
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
