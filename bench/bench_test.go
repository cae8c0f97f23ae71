package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/phasetest"
	"github.com/phase-shim/phase-shim/sanitize"
	"golang.org/x/crypto/curve25519"
)

// sizes are the secret counts of issue 5. 10,000 is left to bench/run's
// whole-process runs: building that fixture alone takes seconds.
var sizes = []int{10, 100, 1000}

// BenchmarkX25519 is the physical limit of decryption: every Phase
// ciphertext costs one X25519 (the key exchange with its ephemeral key), a
// secret two (name and value). Run it with -cpu 1 and -cpu $(nproc): with
// RunParallel, ns/op is wall time per operation over all goroutines, so
// 1e9/(ns/op) is the machine's rate.
func BenchmarkX25519(b *testing.B) {
	var scalar [32]byte
	if _, err := rand.Read(scalar[:]); err != nil {
		b.Fatal(err)
	}
	point, err := curve25519.X25519(scalar[:], curve25519.Basepoint)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := curve25519.X25519(scalar[:], point); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkECDH is one X25519 scalar multiplication and nothing else: the
// private key is parsed once. curve25519.X25519 (above) builds an
// ecdh.PrivateKey on every call, and crypto/ecdh derives the public key
// there, a second scalar multiplication: BenchmarkX25519 is two ladders.
// This one is the physical limit per ciphertext.
func BenchmarkECDH(b *testing.B) {
	curve := ecdh.X25519()
	priv, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	point := peer.PublicKey().Bytes()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Parsing the peer's point is part of every decryption.
			pub, err := curve.NewPublicKey(point)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := priv.ECDH(pub); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// largeDotenv is n lines KEY_00000=value… like phasetest.Large(n), values
// that survive `export $(cat F | xargs)` so the shell baseline is fair.
func largeDotenv(n int) []byte {
	var sb strings.Builder
	for i := range n {
		v := fmt.Sprintf("value-%08d-", i)
		fmt.Fprintf(&sb, "KEY_%05d=%s%s\n", i, v, strings.Repeat("x", 64-len(v)))
	}
	return []byte(sb.String())
}

func BenchmarkParseDotenv(b *testing.B) {
	for _, n := range sizes {
		data := largeDotenv(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				s, err := fetch.ParseDotenv("bench.env", data)
				if err != nil || len(s) != n {
					b.Fatalf("got %d secrets, err %v", len(s), err)
				}
			}
		})
	}
}

// BenchmarkFilePipeline is everything `phase-shim --env-file F -- cmd`
// does in process before exec: read and parse the file, layer, apply the
// name policy, build envp and check the limits.
func BenchmarkFilePipeline(b *testing.B) {
	dir := b.TempDir()
	environ := os.Environ()
	for _, n := range sizes {
		path := filepath.Join(dir, fmt.Sprintf("%d.env", n))
		if err := os.WriteFile(path, largeDotenv(n), 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := filePipeline(path, environ); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func filePipeline(path string, environ []string) error {
	secrets, err := fetch.ReadFile(path)
	if err != nil {
		return err
	}
	vars := make([]shimexec.Var, len(secrets))
	keys := make([]string, len(secrets))
	for i, s := range secrets {
		vars[i] = shimexec.Var{Name: s.Key, Value: s.Value, Source: s.Source}
		keys[i] = s.Key
	}
	merged, _ := shimexec.Layer(vars)
	if _, err := sanitize.Apply(sanitize.Sanitize, keys); err != nil {
		return err
	}
	envp, _, err := shimexec.BuildEnv(merged, shimexec.EnvOptions{Environ: environ, Scrub: []string{"PHASE_SERVICE_TOKEN"}})
	if err != nil {
		return err
	}
	return shimexec.CheckLimits([]string{"/bin/true"}, envp)
}

// BenchmarkFetchPhase is the Phase source end to end against the emulator
// on loopback (behind Front, so its JSON encoding is paid once): two HTTP
// requests, key derivation, 2·n decryptions.
// Compare ns/op with 2·n × BenchmarkX25519's parallel ns/op.
func BenchmarkFetchPhase(b *testing.B) {
	for _, n := range sizes {
		s := phasetest.New(phasetest.Large(n), phasetest.WithSeed(5))
		front := httptest.NewServer(NewFront(s))
		o := fetch.PhaseOptions{
			Token: s.Token("large", phasetest.ServiceV2), Host: front.URL,
			AppID: s.AppID("large"), Env: "Production", MaxAttempts: 1,
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := fetch.FetchPhase(context.Background(), o)
				if err != nil || len(res.Secrets) != n {
					b.Fatalf("n=%d: err %v", n, err)
				}
			}
		})
		front.Close()
		s.Close()
	}
}

// BenchmarkFetchPhase10k is the 10,000-secret case of BenchmarkFetchPhase,
// kept apart because building its fixture takes seconds; bench/run does not
// run it (its whole-process RSS figure comes from /usr/bin/time). Use it to
// profile memory:
//
//	go test -run '^$' -bench FetchPhase10k -benchtime 3x -memprofile mem.out ./bench/
func BenchmarkFetchPhase10k(b *testing.B) {
	s := phasetest.New(phasetest.Large(10000), phasetest.WithSeed(5))
	defer s.Close()
	front := httptest.NewServer(NewFront(s))
	defer front.Close()
	o := fetch.PhaseOptions{
		Token: s.Token("large", phasetest.ServiceV2), Host: front.URL,
		AppID: s.AppID("large"), Env: "Production", MaxAttempts: 1,
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := fetch.FetchPhase(context.Background(), o)
		if err != nil || len(res.Secrets) != 10000 {
			b.Fatalf("err %v", err)
		}
	}
}
