package fetch

import (
	"errors"
	"strings"
	"testing"
)

func FuzzDecodeTokensResponse(f *testing.F) {
	for _, name := range []string{"tokens_gosdk_user.json", "tokens_user.json", "tokens_service_account.json"} {
		b := readVector(f, name)
		f.Add(b)
		f.Add(camelCase(b))
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"wrapped_key_share": "x", "apps": [{"id": "a", "environment_keys": [{"environment": null}]}]}`))
	f.Add([]byte(`{"wrapped_key_share": "x", "apps": [{"id": 1}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := decodeTokensResponse(body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if tr.WrappedKeyShare == "" {
			t.Fatal("accepted a response without a key share")
		}
		for _, a := range tr.Apps {
			if a.ID == "" {
				t.Fatal("accepted an app without id")
			}
			for _, e := range a.Envs {
				if e.ID == "" {
					t.Fatal("accepted an environment without id")
				}
			}
			// Selection over whatever was decoded never panics.
			_, _ = selectEnv(&a, "dev")
		}
		_, _ = selectApp(tr.Apps, "", "a")
	})
}

func FuzzDecodeSecretsResponse(f *testing.F) {
	for _, name := range []string{"secrets_gosdk.json", "secrets_gosdk_multipath.json"} {
		b := readVector(f, name)
		f.Add(b, true)
		f.Add(camelCase(b), false)
		f.Add(b[:len(b)-3], true)
	}
	f.Add([]byte(`[{"id": 5, "key": "ph:v1:x", "override": {"value": "v", "isActive": true}}]`), true)
	f.Add([]byte(`[{"id": "d", "type": "dynamic", "key_map": [{"key_name": ""}], "lease": {"credentials": [{"key": 1}]}}]`), false)
	f.Add([]byte(`[{"key": "k", "tags": [{"name": "t"}, "u", 3]}]`), false)
	f.Add([]byte(`{"error": "nope"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, user bool) {
		list, err := decodeSecretsResponse(body, user)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for _, s := range list {
			if !s.Dynamic && s.Key == "" {
				t.Fatal("accepted a static secret without a key")
			}
			if !user && s.override != nil {
				t.Fatal("override honoured for a non-user token")
			}
			if s.ID == "" {
				t.Fatal("secret without an id for error messages")
			}
		}
	})
}

// FuzzExpandReferences: the reference scanner and parser never panic, and
// raw text without "${" is returned untouched.
func FuzzExpandReferences(f *testing.F) {
	for _, s := range []string{"${KEY}", "a ${b::c./d/E} f", "${{X}}", "${", "${}", "}${a.b.c}", "${::.}", "${a::}", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, val string) {
		app := &apiApp{ID: "a", Name: "app", Envs: []apiEnv{{ID: "e", Name: "Development"}}}
		s := &session{refMode: RefLenient, tokens: &tokensResponse{Apps: []apiApp{*app}}, buckets: map[bucketKey]*bucket{}}
		// An all-folders bucket that is empty: every reference is
		// unresolvable without any request.
		s.buckets[bucketKey{"e", ""}] = &bucket{app: app, env: &app.Envs[0]}
		r := &resolver{s: s, memo: map[refTarget]string{}, active: map[refTarget]bool{}, warned: map[string]bool{}}
		out, err := r.expand(app, &app.Envs[0], val, "TOP")
		if err != nil {
			t.Fatalf("lenient expansion failed: %v", err)
		}
		if !strings.Contains(val, "${") && out != val {
			t.Fatal("text without references changed")
		}
		if out != val {
			t.Fatal("an unresolvable reference changed the text in lenient mode")
		}
		for _, ref := range []string{val} {
			_, _ = parseReference(ref)
		}
	})
}
