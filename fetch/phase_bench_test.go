package fetch

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// BenchmarkDecryptSecrets measures the parallel decryption of N secrets
// (2N ciphertexts: name and value), the CPU cost of a start.
func BenchmarkDecryptSecrets(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			pk, sk := phasecrypto.SeedKeyPair([]byte("bench environment"))
			dec, err := phasecrypto.NewDecrypter(sk, pk)
			if err != nil {
				b.Fatal(err)
			}
			kp := &envKeyPair{pk: pk, sk: sk, dec: dec}
			bk := &bucket{kp: kp}
			for i := range n {
				key, err := phasecrypto.Encrypt(fmt.Appendf(nil, "KEY_%05d", i), hex.EncodeToString(pk[:]), rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				val, err := phasecrypto.Encrypt([]byte(strings.Repeat("v", 64)), hex.EncodeToString(pk[:]), rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				bk.secrets = append(bk.secrets, apiSecret{ID: fmt.Sprint(i), Key: key, Value: val, Path: "/"})
			}
			s := &session{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				bk.keys, bk.keyDone = make([]string, n), make([]bool, n)
				bk.vals, bk.valDone = make([]string, n), make([]bool, n)
				if _, err := s.decryptSelected(bk); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*n), "ns/ciphertext")
		})
	}
}
