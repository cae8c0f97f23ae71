package phasetest

import (
	"fmt"
	"strings"
)

// Fixture is the plaintext description of an organisation. The emulator
// encrypts it once at start-up exactly as the Phase frontend would, so every
// client sees real ciphertexts and key material.
type Fixture struct {
	OrgName string // default "phasetest"
	Apps    []App
	// Accounts lists who can read what. When empty, every app gets its own
	// service_v1 token and one service account (service_v2) and one user
	// are granted every environment of every app.
	Accounts []Account
}

// App is one Phase application.
type App struct {
	ID   string // generated when empty
	Name string
	Envs []Env
}

// Env is one environment of an app.
type Env struct {
	ID   string // generated when empty
	Name string
	Type string // dev | staging | prod | custom; derived from Name when empty
	// Seed and Salt are the 64-hex environment secrets; generated when empty.
	Seed, Salt string
	Secrets    []Secret
	Dynamic    []DynamicSecret
}

// Secret is one static secret in plaintext.
type Secret struct {
	ID      string // generated when empty
	Path    string // "/" when empty; normalised like the server does
	Key     string
	Value   string
	Comment string
	Tags    []string
	Type    string // secret | sealed | config; "secret" when empty
	// Override is the personal override every user account sees.
	Override *Override
}

// Override is a personal override of a secret's value (user tokens only).
type Override struct {
	Value  string
	Active bool
}

// DynamicSecret is a secret whose values exist only inside a lease. Every
// lease hands out Credentials with "-<lease number>" appended to each
// value, so a test can tell leases apart.
type DynamicSecret struct {
	ID          string
	Name        string
	Description string
	Path        string
	Provider    string // "aws" when empty
	DefaultTTL  int    // seconds; 3600 when zero
	MaxTTL      int    // seconds; 86400 when zero
	Credentials []Credential
}

// Credential is one key of a dynamic secret.
type Credential struct{ Key, Value string }

// Account kinds accepted by Server.Token and Account.Kind.
const (
	ServiceV1 = "service_v1" // legacy app-scoped service token, "Bearer Service"
	ServiceV2 = "service_v2" // service account token, "Bearer ServiceAccount"
	User      = "user"       // personal access token, "Bearer User"
)

// Account is a token holder.
type Account struct {
	Name string
	Kind string // ServiceV1 | ServiceV2 | User
	App  string // ServiceV1 only: the app the token belongs to
	// Grants lists the environments this account can decrypt. Nil means
	// every environment of App (ServiceV1) or of every app.
	Grants []Grant
	// Expired accounts are known but rejected like an expired token.
	Expired bool
}

// Grant gives an account one environment.
type Grant struct{ App, Env string }

// DemoFixture is the data of the README demo: an online shop whose
// Production environment holds the names and values that break shell-based
// injection.
func DemoFixture() Fixture {
	pem := demoPEM()
	prod := []Secret{
		{Key: "STRIPE_KEY", Value: "sk_live_demo_51HxQzLkT0pS3cr3tV4lu3", Comment: "rotated 2026-11", Tags: []string{"payments"}},
		{Key: "DATABASE_URL", Value: `postgres://shop:p@ss w0rd"'$HOME*#@db.internal:5432/shop?sslmode=require `, Tags: []string{"database"}},
		{Key: "SECRET_KEY?", Value: "django-insecure-demo=ab$cd`whoami`"},
		{Key: "my-key", Value: "lower case and a dash"},
		{Key: "TLS_PRIVATE_KEY", Value: pem, Comment: "demo key, not a real one"},
		{Key: "DB_DSN", Value: "${DATABASE_URL}", Comment: "a Phase reference"},
		{Key: "GREETING", Value: "héllo wörld ✓  "},
		{Path: "/backend", Key: "PAYMENTS_WEBHOOK_SECRET", Value: "whsec_demo_only_in_backend", Tags: []string{"payments"}},
	}
	return Fixture{
		OrgName: "demo-org",
		Apps: []App{{
			Name: "shop",
			Envs: []Env{
				{Name: "Development", Secrets: []Secret{
					{Key: "STRIPE_KEY", Value: "sk_test_demo_dev"},
					{Key: "DATABASE_URL", Value: "postgres://localhost:5432/shop_dev"},
					{Key: "DEBUG", Value: "true", Override: &Override{Value: "false", Active: true}},
				}},
				{Name: "Staging", Secrets: []Secret{
					{Key: "STRIPE_KEY", Value: "sk_test_demo_staging"},
					{Key: "DATABASE_URL", Value: "postgres://staging-db:5432/shop"},
				}, Dynamic: []DynamicSecret{{
					Name: "aws-creds", Description: "demo dynamic secret",
					Credentials: []Credential{{"AWS_ACCESS_KEY_ID", "AKIADEMO"}, {"AWS_SECRET_ACCESS_KEY", "demo-secret"}},
				}}},
				{Name: "Production", Secrets: prod},
			},
		}},
	}
}

// demoPEM is a syntactically PEM-shaped block of filler. It is not a key.
func demoPEM() string {
	var b strings.Builder
	b.WriteString("-----BEGIN PRIVATE KEY-----\n")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for line := 0; line < 25; line++ {
		for i := 0; i < 64; i++ {
			b.WriteByte(alphabet[(line*131+i*17)%len(alphabet)])
		}
		b.WriteByte('\n')
	}
	b.WriteString("-----END PRIVATE KEY-----\n")
	return b.String()
}

// Large is a benchmark fixture: app "large", environment "Production",
// n secrets KEY_00000… with 64-byte values.
func Large(n int) Fixture {
	secrets := make([]Secret, n)
	for i := range secrets {
		v := fmt.Sprintf("value-%08d-", i)
		secrets[i] = Secret{
			Key:   fmt.Sprintf("KEY_%05d", i),
			Value: v + strings.Repeat("x", 64-len(v)),
		}
	}
	return Fixture{Apps: []App{{Name: "large", Envs: []Env{
		{Name: "Development"},
		{Name: "Production", Secrets: secrets},
	}}}}
}
