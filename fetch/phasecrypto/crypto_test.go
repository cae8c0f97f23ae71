package phasecrypto

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// Vector data is copied from the clean-room spec (phase-test-vectors.md,
// vectors/*.json) into testdata/ so the repository is self-contained.

type vectorsA struct {
	SeedKeypairs []struct {
		Seed       string
		PublicKey  string `json:"public_key"`
		PrivateKey string `json:"private_key"`
	} `json:"seed_keypairs"`
	Blake2bDigests []struct{ Input, Salt, Digest string } `json:"blake2b_digests"`
	SessionKeys    map[string]string                      `json:"session_keys"`
	EncryptRaw     []struct {
		Plaintext, Key      string
		CiphertextWithNonce string `json:"ciphertext_with_nonce"`
	} `json:"encrypt_raw"`
	AsymmetricEncrypt []struct {
		Plaintext           string
		RecipientPublicKey  string `json:"recipient_public_key"`
		RecipientPrivateKey string `json:"recipient_private_key"`
		RecipientSeed       string `json:"recipient_seed"`
		Ciphertext          string
	} `json:"asymmetric_encrypt"`
	XorReconstruct []struct {
		Shares   []string
		Expected string
	} `json:"xor_reconstruct"`
}

func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func h32(t testing.TB, s string) [32]byte {
	t.Helper()
	var out [32]byte
	if err := decodeHex32(s, &out); err != nil {
		t.Fatalf("bad test hex: %v", err)
	}
	return out
}

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad test hex: %v", err)
	}
	return b
}

// sameSecret compares plaintexts without ever printing them: only the label,
// the lengths and the first differing offset reach the failure message.
func sameSecret(t testing.TB, label string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d bytes, first difference at byte %d", label, len(got), len(want), i)
}

func TestSeedKeyPairVectors(t *testing.T) {
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	if len(v.SeedKeypairs) == 0 {
		t.Fatal("no vectors")
	}
	for i, kp := range v.SeedKeypairs {
		pk, sk := SeedKeyPair(hx(t, kp.Seed))
		if hex.EncodeToString(pk[:]) != kp.PublicKey {
			t.Errorf("seed %d: public key mismatch", i)
		}
		if hex.EncodeToString(sk[:]) != kp.PrivateKey {
			t.Errorf("seed %d: private key mismatch", i)
		}
	}
	// The session-key pair and the asymmetric recipients come from seeds too.
	pk, sk := SeedKeyPair(hx(t, v.SessionKeys["seed_a"]))
	if hex.EncodeToString(pk[:]) != v.SessionKeys["public_key_a"] || hex.EncodeToString(sk[:]) != v.SessionKeys["private_key_a"] {
		t.Error("seed_a key pair mismatch")
	}
	for i, a := range v.AsymmetricEncrypt {
		pk, sk := SeedKeyPair(hx(t, a.RecipientSeed))
		if hex.EncodeToString(pk[:]) != a.RecipientPublicKey || hex.EncodeToString(sk[:]) != a.RecipientPrivateKey {
			t.Errorf("asymmetric %d: recipient key pair mismatch", i)
		}
	}
}

func TestSessionKeyVectors(t *testing.T) {
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	s := v.SessionKeys
	pkA, skA := h32(t, s["public_key_a"]), h32(t, s["private_key_a"])
	pkB, skB := h32(t, s["public_key_b"]), h32(t, s["private_key_b"])
	privA, _ := ecdh.X25519().NewPrivateKey(skA[:])
	privB, _ := ecdh.X25519().NewPrivateKey(skB[:])
	// A is the client: client tx = h[32:64].
	ctx, err := sessionKey(privA, pkB[:], pkA[:], pkB[:])
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(ctx) != s["client_tx"] {
		t.Error("client tx mismatch")
	}
	// B is the server: server rx = the same bytes.
	srx, err := sessionKey(privB, pkA[:], pkA[:], pkB[:])
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(srx) != s["server_rx"] {
		t.Error("server rx mismatch")
	}
}

func TestDigestVectors(t *testing.T) {
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	type kat struct{ input, salt, want string }
	cases := []kat{
		{"", "", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
		{"hello world", "", "256c83b297114d201b30179f3f0ef0cace9783622da5974326b436178aeef610"},
		{"another test", "another salt", "5afad949edcfb22bd24baeed4e75b0aeca41731b8dff78f989a5a4c0564f211f"},
		// Block E.3/E.4: digests with real 64-character salts.
		{"API_KEY", "a2432aea4a96d05452b88342a072e34ad08318b5ba55bcba2c83dcac4717aab2", "c417d6bc7d279bf885b924c3221a3bf480aedff25ba3e581c078f5791d6a62ec"},
		{"new_key", "a2432aea4a96d05452b88342a072e34ad08318b5ba55bcba2c83dcac4717aab2", "3e24fce7d4bf28090b95c2efaa470ae121526df4974c8565c25ac160b304e758"},
		{"NEW_KEY", "a2432aea4a96d05452b88342a072e34ad08318b5ba55bcba2c83dcac4717aab2", "8c6edcbf6eda72e23076601701388a14ea128f25f6cf68d42a60423b9615fdfb"},
		{"API_KEY", "aa4beec7bee91fbc40927593d06f466d71a401a6b3a21efe13db37bc4d14e3f8", "67e2ba99843d8fb159907ace6d91dc643bce5da92b2bbcfe22eb4cc0f248b2ee"},
		{"SATELLITE_HANDOFF_KEY", "fd76246577f73b97c8ba60f6804d4bca6c5a518ad589de3d871a4affd37de4c4", "639673a7ed8cd7188e75ed60a2e24e5752119d27b642db367cf747dd02bbdb6c"},
		{"BANDWIDTH_ALLOCATION_KEY", "fd76246577f73b97c8ba60f6804d4bca6c5a518ad589de3d871a4affd37de4c4", "7ecc5e08ea64b9b898f275ca6b7b44b6b7da50923491e1d6f978adcde40420dc"},
	}
	for _, d := range v.Blake2bDigests {
		cases = append(cases, kat{d.Input, d.Salt, d.Digest})
	}
	for i, c := range cases {
		if got := Digest(c.input, c.salt); got != c.want {
			t.Errorf("case %d (input %d bytes, salt %d bytes): got %s want %s", i, len(c.input), len(c.salt), got, c.want)
		}
	}
	// A salt longer than BLAKE2b's key limit must not panic.
	_ = Digest("x", strings.Repeat("s", 200))
}

func TestRawAEADVectors(t *testing.T) {
	// The primitive layout (ct ‖ tag ‖ nonce) that both ph:v1 and wrapped
	// shares rely on.
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	for i, e := range v.EncryptRaw {
		key := hx(t, e.Key)
		blob := hx(t, e.CiphertextWithNonce)
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			t.Fatal(err)
		}
		n := len(blob) - nonceSize
		pt, err := aead.Open(nil, blob[n:], blob[:n], nil)
		if err != nil {
			t.Fatalf("raw %d: %v", i, err)
		}
		sameSecret(t, "raw plaintext", pt, []byte(e.Plaintext))
	}
}

func TestDecryptVectors(t *testing.T) {
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	for i, a := range v.AsymmetricEncrypt {
		pk, sk := h32(t, a.RecipientPublicKey), h32(t, a.RecipientPrivateKey)
		pt, err := Decrypt(a.Ciphertext, sk, pk)
		if err != nil {
			t.Fatalf("asymmetric %d: %v", i, err)
		}
		sameSecret(t, "asymmetric plaintext", pt, []byte(a.Plaintext))
	}
}

// Block E.5: deterministic encryption with a fixed ephemeral key and nonce.
func TestEncryptKnownAnswers(t *testing.T) {
	const recipient = "2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20"
	cases := []struct {
		esk, nonce, plaintext, want string
	}{
		{
			"4444444444444444444444444444444444444444444444444444444444444444",
			"555555555555555555555555555555555555555555555555",
			"API_KEY",
			"ph:v1:ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b:LYSIlXUNcOTyZXUCon2TyPKWJTDOR2ZVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU=",
		},
		{
			"6666666666666666666666666666666666666666666666666666666666666666",
			"000102030405060708090a0b0c0d0e0f1011121314151617",
			"postgres://user:p@ss@db:5432/app?x=${API_KEY}",
			"ph:v1:219e4d800da968d2a5fcb009c784f4746c7138edb9ee4844b739e830b05cf424:Pm3MVJpnWsxphtxilEroTaPga0GlYuSIhnoh8GdUjwFAzLOtRbcnKBsdC9mgWb+ZnSd21+N17mhzlqCwBgABAgMEBQYHCAkKCwwNDg8QERITFBUWFw==",
		},
	}
	sk := h32(t, "95f0e65e875853b2718d287c213bba4797086af037e4e2d2b61d1790236738e4")
	pk := h32(t, recipient)
	for i, c := range cases {
		rnd := bytes.NewReader(append(hx(t, c.esk), hx(t, c.nonce)...))
		got, err := Encrypt([]byte(c.plaintext), recipient, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("case %d: ciphertext differs from the libsodium answer", i)
		}
		pt, err := Decrypt(got, sk, pk)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		sameSecret(t, "round trip", pt, []byte(c.plaintext))
	}
}

func TestWrapShareKnownAnswer(t *testing.T) {
	wrapKey := h32(t, "4a04b7a5100c67cbf6376f8dae1ca936ca17bcbc119a4a84f8e3727696460925")
	share1 := "b3d9329eb733a1a06cf580a2d1d0e0203e9a1a015200082d5469997044a258b4"
	want := "44505eb61e7938e478427794ce568c4e736a974cc59284e10e8c6c3f266f4cc5a10505b1ace8510a35fbee80cad4bfa67bd8dff7c6cabffac0ba0b60431214d50db396a213bbb45c98e46fee86baacf9777777777777777777777777777777777777777777777777"
	got, err := WrapShare(wrapKey, share1, bytes.NewReader(hx(t, strings.Repeat("77", 24))))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Error("wrapped share differs from the libsodium answer")
	}
	back, err := UnwrapShare(got, wrapKey)
	if err != nil {
		t.Fatal(err)
	}
	if back != share1 {
		t.Error("unwrap did not return share 1")
	}
	// A flipped bit must fail to authenticate.
	bad := []byte(got)
	bad[0] ^= 1
	if _, err := UnwrapShare(string(bad), wrapKey); !errors.Is(err, ErrCiphertext) {
		t.Errorf("tampered share: got %v, want ErrCiphertext", err)
	}
}

func TestXORVectors(t *testing.T) {
	var v vectorsA
	loadJSON(t, "vectors_a.json", &v)
	for i, x := range v.XorReconstruct {
		a, b := hx(t, x.Shares[0]), hx(t, x.Shares[1])
		for j := range a {
			a[j] ^= b[j]
		}
		if hex.EncodeToString(a) != x.Expected {
			t.Errorf("xor %d mismatch", i)
		}
	}
}

type tokensFile struct {
	WrappedKeyShare string `json:"wrapped_key_share"`
	Apps            []struct {
		Name            string
		EnvironmentKeys []struct {
			Environment struct{ Name string }
			IdentityKey string `json:"identity_key"`
			WrappedSeed string `json:"wrapped_seed"`
			WrappedSalt string `json:"wrapped_salt"`
		} `json:"environment_keys"`
	}
}

// Blocks B, C, D, E: the whole chain from token to plaintext secrets.
func TestChainKnownAnswers(t *testing.T) {
	type envWant struct{ seed, salt, sk, pk string }
	cases := []struct {
		name, token, file, accountSk string
		envs                         map[string]envWant
	}{
		{
			name:      "user (node fixture)",
			token:     "pss_user:v1:6759ecdb7307cb2a1994fe397bd690725cdfabbda952e4cc568fc5e3e0286a3d:b8f2214246b79a20dfcd62870e7e6a48343f9c7fcdfb7d664175ac11a76bce10:451f1dce52290ee0a4d8f4b8f9fe0a946447e288ff1b10b494fdd5fe28ed4ab8:959c5fe47a3b35cd8278890ce208a318d5411aa1cf06d5fc2cbe8af41904544e",
			file:      "tokens_user.json",
			accountSk: "900d0f3f65fa2a95e41c268fe326642667fc1febcc4b864344f783978513555e",
		},
		{
			name:      "service account",
			token:     "pss_service:v2:048c9daa773b2d9bb21a1dda69a56f2b895401fded26889c7063c72224a61f65:fc065f7e5e1093292b20d0c917968cbe3badfb2e82bf1caa70649b72d0017905:1bb35376aacb277fd2792d781dbff5d0e9f7547da3544f4d394ff027d91436d5:4a04b7a5100c67cbf6376f8dae1ca936ca17bcbc119a4a84f8e3727696460925",
			file:      "tokens_service_account.json",
			accountSk: "a86a61e81df886dfbe8caddacc6f15f0d76d4e7cf15447606d2669579db66e61",
		},
		{
			name:      "user (go sdk fixture)",
			token:     gosdkToken,
			file:      "tokens_gosdk_user.json",
			accountSk: "286c96eef23195d5c6077606b80fd50c6a11c08a6b4e1f6db90cbe3fecac9a51",
			envs: map[string]envWant{"Development": {
				seed: "d25abb6271f0cb2e6255e03325c02b94d6fd11c8a4fa2a6e473d43b9322f1edc",
				salt: "fd76246577f73b97c8ba60f6804d4bca6c5a518ad589de3d871a4affd37de4c4",
				sk:   "75d4a6fe89453d269cda1e65a36293ae89329278266a85512b3cbf71f5fa6621",
				pk:   "53b9d2b5e10cd1919dd1828959c292484b6a0c0b97853b04abbf078b13053c75",
			}},
		},
	}
	nodeEnvs := map[string]envWant{
		"Development": {"2c40c01a3881988494ec6dce2b9827686beb71e54c61d163ffdc62d6d8048f80", "a2432aea4a96d05452b88342a072e34ad08318b5ba55bcba2c83dcac4717aab2", "95f0e65e875853b2718d287c213bba4797086af037e4e2d2b61d1790236738e4", "2d1eb10b8406cc4a2ef0287053cd21da408a24fbfb65d8002f56132fbe46cc20"},
		"Staging":     {"a180bf875899aba889266c2eb9c612cbf640ecce94091c026de83e246213be30", "fef95738676540064f6f61f6b0424aa339db5d2cc8153ad4dc4c58bc1cb402e5", "62334ce299fa2238a00922dac285580fff6e179a482a7217fd79e60d6b209f95", "d80ad5a145b4c5477473965c5b832e8856a51b612baea1b8da2028616217540a"},
		"Production":  {"56fcf0b85d40b5527d7c59bf7cfc9fa1c562b692fbcf70995e3ac60e9614215f", "aa4beec7bee91fbc40927593d06f466d71a401a6b3a21efe13db37bc4d14e3f8", "8a6bb35fad66163918df9e961ddc3dad21492de77188976453b5f5dcb6f0d3ed", "700e79e28535aac9a8fe960744ca8c9468dc10cca9f6ff31447beb1f1b51ee4d"},
	}
	cases[0].envs, cases[1].envs = nodeEnvs, nodeEnvs
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := ParseToken(c.token)
			if err != nil {
				t.Fatal(err)
			}
			var tf tokensFile
			loadJSON(t, c.file, &tf)
			apk, ask, err := tok.AccountKeys(tf.WrappedKeyShare)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(ask[:]) != c.accountSk {
				t.Fatal("account private key mismatch")
			}
			seen := 0
			for _, ek := range tf.Apps[0].EnvironmentKeys {
				want, ok := c.envs[ek.Environment.Name]
				if !ok {
					continue
				}
				seen++
				seed, err := Decrypt(ek.WrappedSeed, ask, apk)
				if err != nil {
					t.Fatalf("%s seed: %v", ek.Environment.Name, err)
				}
				salt, err := Decrypt(ek.WrappedSalt, ask, apk)
				if err != nil {
					t.Fatalf("%s salt: %v", ek.Environment.Name, err)
				}
				if string(seed) != want.seed || string(salt) != want.salt {
					t.Errorf("%s: seed or salt mismatch", ek.Environment.Name)
				}
				epk, esk := SeedKeyPair(hx(t, string(seed)))
				if hex.EncodeToString(esk[:]) != want.sk || hex.EncodeToString(epk[:]) != want.pk || want.pk != ek.IdentityKey {
					t.Errorf("%s: environment key pair mismatch", ek.Environment.Name)
				}
			}
			if seen != len(c.envs) {
				t.Errorf("checked %d environments, want %d", seen, len(c.envs))
			}
		})
	}
}

const gosdkToken = "pss_user:v1:9d5356eae3618da040c61b50349f291d4db9c74da5315caeb65da25ee5d0d8b7:170d014dae1a2d76130e4eb6579fe1edce5c4ea0b69794cd6a18978769120709:e1e5018e0829a1142c79afa5f70c01c8d4889b15116553d266e761851ad11197:b5b26ee93f0b68cecfa53c4a7dc8ffcb75bbecdd1f56930a9118a1e4a72b34f9"

func TestGoSDKSecretsKnownAnswers(t *testing.T) {
	envSk := h32(t, "75d4a6fe89453d269cda1e65a36293ae89329278266a85512b3cbf71f5fa6621")
	envPk := h32(t, "53b9d2b5e10cd1919dd1828959c292484b6a0c0b97853b04abbf078b13053c75")
	type row struct{ Key, Value, Comment, Path string }
	check := func(file string, want []row) {
		var secrets []struct{ ID, Key, Value, Comment, Path string }
		loadJSON(t, file, &secrets)
		if len(secrets) != len(want) {
			t.Fatalf("%s: %d secrets, want %d", file, len(secrets), len(want))
		}
		for i, s := range secrets {
			k, err := Decrypt(s.Key, envSk, envPk)
			if err != nil {
				t.Fatalf("%s %s key: %v", file, s.ID, err)
			}
			v, err := Decrypt(s.Value, envSk, envPk)
			if err != nil {
				t.Fatalf("%s %s value: %v", file, s.ID, err)
			}
			if string(k) != want[i].Key {
				t.Errorf("%s %s: key mismatch", file, s.ID)
			}
			sameSecret(t, want[i].Key, v, []byte(want[i].Value))
			if s.Comment != "" {
				c, err := Decrypt(s.Comment, envSk, envPk)
				if err != nil {
					t.Fatalf("%s %s comment: %v", file, s.ID, err)
				}
				sameSecret(t, want[i].Key+" comment", c, []byte(want[i].Comment))
			}
			if s.Path != want[i].Path {
				t.Errorf("%s %s: path %q, want %q", file, s.ID, s.Path, want[i].Path)
			}
		}
	}
	check("secrets_gosdk.json", []row{
		{"SATELLITE_HANDOFF_KEY", "hndfrk_sjdh23h2j3h2", "", "/"},
		{"BANDWIDTH_ALLOCATION_KEY", "bwalloc_key_28dhj3j3", "", "/"},
	})
	check("secrets_gosdk_multipath.json", []row{
		{"SATELLITE_HANDOFF_KEY", "hndfrk_sjdh23h2j3h2", "", "/alpha"},
		{"SATELLITE_HANDOFF_KEY", "bwalloc_key_28dhj3j3", "", "/beta"},
	})
}

func TestDecryptRejects(t *testing.T) {
	pk, sk := SeedKeyPair([]byte("recipient"))
	good, err := Encrypt([]byte("payload"), hex.EncodeToString(pk[:]), bytes.NewReader(bytes.Repeat([]byte{7}, 56)))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ":")
	otherPk, otherSk := SeedKeyPair([]byte("someone else"))
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":          "",
		"three fields":   "ph:v1:" + parts[2],
		"five fields":    good + ":x",
		"bad prefix":     "xx:v1:" + parts[2] + ":" + parts[3],
		"bad version":    "ph:v2:" + parts[2] + ":" + parts[3],
		"short epk":      "ph:v1:abcd:" + parts[3],
		"non-hex epk":    "ph:v1:" + strings.Repeat("z", 64) + ":" + parts[3],
		"zero epk":       "ph:v1:" + strings.Repeat("0", 64) + ":" + parts[3],
		"bad base64":     "ph:v1:" + parts[2] + ":!!!!",
		"short payload":  "ph:v1:" + parts[2] + ":AAAA",
		"tampered":       "ph:v1:" + parts[2] + ":" + flip(parts[3]),
		"other epk":      "ph:v1:" + hex.EncodeToString(otherPk[:]) + ":" + parts[3],
		"url base64 pad": "ph:v1:" + parts[2] + ":" + strings.TrimRight(parts[3], "="),
	}
	for name, ct := range cases {
		if _, err := Decrypt(ct, sk, pk); !errors.Is(err, ErrCiphertext) {
			t.Errorf("%s: got %v, want ErrCiphertext", name, err)
		}
	}
	if _, err := Decrypt(good, otherSk, otherPk); !errors.Is(err, ErrCiphertext) {
		t.Errorf("wrong key: got %v, want ErrCiphertext", err)
	}
	// The recipient public key is part of the session key: a right sk with a
	// wrong pk must fail too.
	if _, err := Decrypt(good, sk, otherPk); !errors.Is(err, ErrCiphertext) {
		t.Errorf("wrong pk: got %v, want ErrCiphertext", err)
	}
	if pt, err := Decrypt(good, sk, pk); err != nil || string(pt) != "payload" {
		t.Errorf("control: %v", err)
	}
}

func TestEncryptEmptyAndRandom(t *testing.T) {
	pk, sk, err := NewKeyPair(bytes.NewReader(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "x", "multi\nline", strings.Repeat("é", 5000)} {
		ct, err := Encrypt([]byte(p), hex.EncodeToString(pk[:]), randReader{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(ct, sk, pk)
		if err != nil {
			t.Fatal(err)
		}
		sameSecret(t, "round trip", got, []byte(p))
	}
	if _, err := Encrypt(nil, "nothex", randReader{}); err == nil {
		t.Error("bad recipient key accepted")
	}
	if _, err := Encrypt(nil, hex.EncodeToString(pk[:]), bytes.NewReader(nil)); err == nil {
		t.Error("short random source accepted")
	}
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return len(p), nil
}

func BenchmarkDecrypter(b *testing.B) {
	pk, sk := SeedKeyPair([]byte("bench"))
	ct, err := Encrypt([]byte(strings.Repeat("v", 64)), hex.EncodeToString(pk[:]), randReader{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDecrypter(sk, pk)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decrypt(ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	pk, sk := SeedKeyPair([]byte("bench"))
	ct, err := Encrypt([]byte(strings.Repeat("v", 64)), hex.EncodeToString(pk[:]), randReader{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decrypt(ct, sk, pk); err != nil {
			b.Fatal(err)
		}
	}
}
