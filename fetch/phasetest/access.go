package phasetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// ErrNotFound is returned for an unknown app, environment, account or secret.
var ErrNotFound = errors.New("not found")

func errNotFound(what string) error { return fmt.Errorf("%s: %w", what, ErrNotFound) }

// account finds the first account of kind that can read appName.
func (s *Server) accountFor(appName, kind string) *account {
	ap := s.findApp(appName)
	if ap == nil {
		return nil
	}
	for _, a := range s.accounts {
		if a.kind != kind {
			continue
		}
		for _, g := range a.grants {
			if g.env.app == ap {
				return a
			}
		}
	}
	return nil
}

// Token returns the token string of the first account of kind
// (ServiceV1, ServiceV2 or User) that can read app; always the same string.
// It panics when there is none: the test asked for something its fixture
// does not hold.
func (s *Server) Token(appName, kind string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountFor(appName, kind)
	if a == nil {
		panic(fmt.Sprintf("phasetest: no %s account can read app %q", kind, appName))
	}
	return a.tokens[0].str
}

// TokenFor returns the first token of the fixture account called name.
func (s *Server) TokenFor(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		if a.name == name {
			return a.tokens[0].str, nil
		}
	}
	return "", errNotFound("account " + name)
}

// AccountID is the id of the account Token(app, kind) belongs to (for a
// service account: the service account id used by AWS IAM auth).
func (s *Server) AccountID(appName, kind string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accountFor(appName, kind); a != nil {
		return a.id
	}
	return ""
}

// MintToken issues a new token for the account Token(app, kind) belongs
// to. ttl > 0 makes it expire; the server then rejects it as expired.
func (s *Server) MintToken(appName, kind string, ttl time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountFor(appName, kind)
	if a == nil {
		return "", errNotFound(fmt.Sprintf("%s account for app %q", kind, appName))
	}
	t, err := s.mint(a, ttl)
	if err != nil {
		return "", err
	}
	return t.str, nil
}

// AppID is the id of the app called name ("" when unknown).
func (s *Server) AppID(appName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.findApp(appName); a != nil {
		return a.id
	}
	return ""
}

// EnvID is the id of an environment ("" when unknown).
func (s *Server) EnvID(appName, envName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupEnv(appName, envName)
	if err != nil {
		return ""
	}
	return e.id
}

func (s *Server) lookupEnv(appName, envName string) (*env, error) {
	a := s.findApp(appName)
	if a == nil {
		return nil, errNotFound("app " + appName)
	}
	e := findEnv(a, envName)
	if e == nil {
		return nil, errNotFound(fmt.Sprintf("environment %q of app %q", envName, appName))
	}
	return e, nil
}

func (s *Server) decryptString(e *env, ct string) (string, error) {
	if ct == "" {
		return "", nil
	}
	b, err := phasecrypto.Decrypt(ct, e.sk, e.pk)
	return string(b), err
}

// PlainSecret is a stored secret, decrypted with the server's copy of the
// environment key: what a test compares after a client wrote.
type PlainSecret struct {
	ID, Path, Key, Value, Comment, Type, KeyDigest string
	Tags                                           []string
	Version                                        int
	Override                                       *Override // the first stored personal override
}

// Secrets returns the live static secrets of an environment in storage
// order. A ciphertext the server cannot decrypt (a client wrote garbage) is
// an error naming the secret id.
func (s *Server) Secrets(appName, envName string) ([]PlainSecret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupEnv(appName, envName)
	if err != nil {
		return nil, err
	}
	var out []PlainSecret
	for _, sec := range e.secrets {
		if sec.deleted {
			continue
		}
		p := PlainSecret{ID: sec.id, Path: sec.path, Type: sec.typ, KeyDigest: sec.keyDigest,
			Tags: append([]string{}, sec.tags...), Version: sec.version}
		for _, f := range []struct {
			dst *string
			ct  string
		}{{&p.Key, sec.keyCT}, {&p.Value, sec.valueCT}, {&p.Comment, sec.commentCT}} {
			if *f.dst, err = s.decryptString(e, f.ct); err != nil {
				return nil, fmt.Errorf("secret %s: %w", sec.id, err)
			}
		}
		if o := firstOverride(sec.overrides); o != nil {
			v, err := s.decryptString(e, o.valueCT)
			if err != nil {
				return nil, fmt.Errorf("secret %s override: %w", sec.id, err)
			}
			p.Override = &Override{Value: v, Active: o.active}
		}
		out = append(out, p)
	}
	return out, nil
}

// Values is Secrets as a map KEY → value for one path ("" = every path;
// a later path wins).
func (s *Server) Values(appName, envName, path string) (map[string]string, error) {
	all, err := s.Secrets(appName, envName)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range all {
		if path == "" || p.Path == normalizePath(path) {
			out[p.Key] = p.Value
		}
	}
	return out, nil
}

// AddSecret encrypts and stores a secret at run time.
func (s *Server) AddSecret(appName, envName string, sec Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupEnv(appName, envName)
	if err != nil {
		return err
	}
	stored, err := s.encryptSecret(e, sec, s.now())
	if err != nil {
		return err
	}
	e.secrets = append(e.secrets, stored)
	return nil
}

// firstOverride prefers the fixture's shared override, then the one with
// the smallest account id, so the view does not depend on map order.
func firstOverride(m map[string]*override) *override {
	if o, ok := m[""]; ok {
		return o
	}
	var best string
	var out *override
	for id, o := range m {
		if out == nil || id < best {
			best, out = id, o
		}
	}
	return out
}
