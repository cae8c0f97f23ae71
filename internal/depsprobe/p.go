package depsprobe

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "golang.org/x/crypto/blake2b"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/curve25519"
	_ "golang.org/x/crypto/x509roots/fallback"
	_ "golang.org/x/sys/unix"
)
