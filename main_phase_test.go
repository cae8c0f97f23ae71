package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
	"github.com/rogpeppe/go-internal/testscript"
)

// phaseAppID is fixed so .phase.json in a script can name the app.
const phaseAppID = "6a1e4b52-7c3d-4e8f-9a0b-1c2d3e4f5a6b"

// phaseProd is the Production environment the scripts fetch: hostile names
// and values, with the name each one must arrive under.
var phaseProd = []struct{ key, value, name string }{
	{"STRIPE_KEY", "sk_test_51HxQz_phase_shim_e2e", "STRIPE_KEY"},
	{"SECRET_KEY?", "django-insecure=ab$cd`whoami`", "SECRET_KEY_"},
	{"DATABASE_URL", `postgres://shop:p@ss w0rd"'$HOME*#@db:5432/shop `, "DATABASE_URL"},
	{"my-key", "line one\nline two\n\ttabbed", "my_key"},
	{"GREETING", "héllo wörld 🔑  ", "GREETING"},
	{"EMPTY", "", "EMPTY"},
}

var phaseDev = []struct{ key, value, name string }{
	{"STRIPE_KEY", "sk_test_dev_only", "STRIPE_KEY"},
	{"DATABASE_URL", "postgres://localhost:5432/shop_dev", "DATABASE_URL"},
}

func phaseFixture() phasetest.Fixture {
	env := func(name string, rows []struct{ key, value, name string }) phasetest.Env {
		e := phasetest.Env{Name: name}
		for _, r := range rows {
			e.Secrets = append(e.Secrets, phasetest.Secret{Key: r.key, Value: r.value})
		}
		return e
	}
	return phasetest.Fixture{Apps: []phasetest.App{{
		ID:   phaseAppID,
		Name: "shop",
		Envs: []phasetest.Env{env("Development", phaseDev), env("Production", phaseProd)},
	}}}
}

// setupPhase starts an emulator for the script (plain HTTP on 127.0.0.1)
// and hands it over as variables: EMU_HOST, TOKEN_V1, TOKEN_V2, TOKEN_USER;
// plus the files the scripts compare with: phase-prod.json and
// phase-dev.json (expected NAME=VALUE lists), host.json and token-*.json
// (the inherited variables as the child sees them with --keep-token), and
// token-v2.txt (the token with a trailing newline, as files usually end).
func setupPhase(e *testscript.Env) error {
	s := phasetest.New(phaseFixture(), phasetest.WithSeed(7))
	e.Defer(s.Close)
	e.Setenv("EMU_HOST", s.URL())
	tokens := map[string]string{
		"v1":   s.Token("shop", phasetest.ServiceV1),
		"v2":   s.Token("shop", phasetest.ServiceV2),
		"user": s.Token("shop", phasetest.User),
	}
	e.Setenv("TOKEN_V1", tokens["v1"])
	e.Setenv("TOKEN_V2", tokens["v2"])
	e.Setenv("TOKEN_USER", tokens["user"])

	write := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(e.WorkDir, name), b, 0o600)
	}
	want := func(rows []struct{ key, value, name string }) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.name+"="+r.value)
		}
		return out
	}
	if err := write("phase-prod.json", want(phaseProd)); err != nil {
		return err
	}
	if err := write("phase-dev.json", want(phaseDev)); err != nil {
		return err
	}
	if err := write("host.json", []string{"PHASE_HOST=" + s.URL()}); err != nil {
		return err
	}
	for kind, tok := range tokens {
		if err := write("token-"+kind+".json", []string{"PHASE_SERVICE_TOKEN=" + tok}); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(e.WorkDir, "token-v2.txt"), []byte(tokens["v2"]+"\n"), 0o600); err != nil {
		return err
	}
	return setupAWSIAM(e, s)
}
