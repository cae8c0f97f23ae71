package fetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Phase secret references (spec §5.5):
//
//	${KEY}                      this environment, folder "/"
//	${env.KEY}                  another environment of this app, "/"
//	${/path/KEY} ${path/KEY}    this environment, another folder
//	${env./path/KEY}
//	${app::env.KEY} ${app::env./path/KEY}   another application (env required)
//
// Parsing follows the Go SDK and the Python CLI: the app is what precedes
// the first "::", the environment what precedes the first "." after it, and
// the folder/key split is at the last "/". "${{…}}" (GitHub Actions,
// Railway) is not a reference. Nested references resolve in the context of
// the secret that holds them. A referenced folder or environment that the
// main request did not return is fetched once per run (one request per
// (environment, folder); a folder of the main environment already covered
// by the main request costs nothing).

// maxRefDepth bounds a chain of references; Phase's server stops at 25.
const maxRefDepth = 32

type refTarget struct{ envID, path, key string }

type resolver struct {
	s      *session
	ctx    context.Context
	memo   map[refTarget]string
	active map[refTarget]bool
	chain  []string
	warned map[string]bool
}

// resolveAll expands the references in the selected secrets' values, in
// place.
func (s *session) resolveAll(ctx context.Context, main *bucket, secrets []selected) error {
	r := &resolver{s: s, ctx: ctx, memo: map[refTarget]string{}, active: map[refTarget]bool{}, warned: map[string]bool{}}
	for j := range secrets {
		sel := &secrets[j]
		if !strings.Contains(sel.value, "${") {
			continue
		}
		t := refTarget{main.env.ID, sel.path, sel.key}
		v, err := r.resolveSecret(main, sel.idx, t, sel.key, sel.key)
		if err != nil {
			return err
		}
		sel.value = v
	}
	return nil
}

// resolveSecret returns the fully expanded value of secret i of b. top is
// the requested secret whose resolution led here, for messages.
func (r *resolver) resolveSecret(b *bucket, i int, t refTarget, label, top string) (string, error) {
	if v, ok := r.memo[t]; ok {
		return v, nil
	}
	if r.active[t] {
		cycle := append(append([]string{}, r.chain...), label)
		return "", fmt.Errorf("%w: secret %q: circular reference: %s", ErrData, top, strings.Join(cycle, " → "))
	}
	if len(r.chain) >= maxRefDepth {
		return "", fmt.Errorf("%w: secret %q: references nested deeper than %d", ErrData, top, maxRefDepth)
	}
	raw, err := b.value(i)
	if err != nil {
		return "", err
	}
	r.active[t] = true
	r.chain = append(r.chain, label)
	v, err := r.expand(b.app, b.env, raw, top)
	r.chain = r.chain[:len(r.chain)-1]
	delete(r.active, t)
	if err != nil {
		return "", err
	}
	r.memo[t] = v
	return v, nil
}

// expand replaces each ${…} in val. app and env are the context of the
// secret val belongs to.
func (r *resolver) expand(app *apiApp, env *apiEnv, val, top string) (string, error) {
	if !strings.Contains(val, "${") {
		return val, nil
	}
	var out strings.Builder
	rest := val
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			out.WriteString(rest)
			break
		}
		out.WriteString(rest[:i])
		rest = rest[i:]
		if strings.HasPrefix(rest, "${{") {
			out.WriteString("${{")
			rest = rest[3:]
			continue
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			out.WriteString(rest)
			break
		}
		text, body := rest[:end+1], rest[2:end]
		rest = rest[end+1:]
		if body == "" {
			out.WriteString(text)
			continue
		}
		v, ok, err := r.lookup(app, env, body, text, top)
		if err != nil {
			return "", err
		}
		if ok {
			out.WriteString(v)
		} else {
			out.WriteString(text)
		}
	}
	return out.String(), nil
}

// errUnresolvable marks a reference that names something that does not
// exist (as opposed to a failed request, which always aborts).
var errUnresolvable = errors.New("unresolvable")

func (r *resolver) lookup(app *apiApp, env *apiEnv, body, text, top string) (string, bool, error) {
	v, err := r.find(app, env, body, top)
	if err == nil {
		return v, true, nil
	}
	if !errors.Is(err, errUnresolvable) {
		return "", false, err
	}
	shown, reason := describeRef(text, body, err)
	if r.s.refMode == RefStrict {
		return "", false, fmt.Errorf("%w: secret %q: reference %s cannot be resolved: %s (use --references lenient to keep the text)", ErrData, top, shown, reason)
	}
	w := fmt.Sprintf("secret %q: reference %s left unresolved: %s", top, shown, reason)
	if !r.warned[w] {
		r.warned[w] = true
		r.s.warnings = append(r.s.warnings, w)
	}
	return "", false, nil
}

// describeRef renders an unresolvable ${…} for a message. The text sits
// inside a secret's value, so it is shown only when it reads like a
// reference (names, folders, "." and "::"); anything else — a password
// that happens to contain "${" and "}" — is described by its length and
// none of its parts reach the message.
func describeRef(text, body string, err error) (shown, reason string) {
	if !refLike(body) {
		return fmt.Sprintf("(a ${…} of %d characters that is not a reference, not shown)", len(text)),
			"it names no secret"
	}
	return cleanText(text, 200), strings.TrimPrefix(err.Error(), errUnresolvable.Error()+": ")
}

// refLike: what app, environment and key names and folders are made of.
func refLike(body string) bool {
	if len(body) > 200 {
		return false
	}
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == '/', c == ':', c == ' ':
		default:
			return false
		}
	}
	return true
}

func unresolvable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUnresolvable}, args...)...)
}

func (r *resolver) find(app *apiApp, env *apiEnv, body, top string) (string, error) {
	ref, err := parseReference(body)
	if err != nil {
		return "", unresolvable("%v", err)
	}
	tApp, tEnv := app, env
	if ref.app != "" {
		if tApp = r.findApp(ref.app); tApp == nil {
			return "", unresolvable("no application %q is visible to this token", cleanText(ref.app, 80))
		}
	}
	if ref.env != "" {
		i, cands := matchName(envNames(tApp.Envs), ref.env)
		if i < 0 {
			if cands != nil {
				return "", unresolvable("environment %q is ambiguous in %q (%s)", cleanText(ref.env, 80), cleanText(tApp.Name, 80), quoteList(cands))
			}
			return "", unresolvable("no environment %q in application %q", cleanText(ref.env, 80), cleanText(tApp.Name, 80))
		}
		tEnv = &tApp.Envs[i]
	}
	b := r.s.buckets[bucketKey{tEnv.ID, ""}]
	if b == nil {
		if b, err = r.s.fetchBucket(r.ctx, tApp, tEnv, ref.path, false); err != nil {
			return "", err
		}
	}
	i, err := b.find(ref.path, ref.key)
	if err != nil {
		return "", err
	}
	if i < 0 {
		return "", unresolvable("no key %q in application %q, environment %q, folder %q", cleanText(ref.key, 80), cleanText(tApp.Name, 80), cleanText(tEnv.Name, 80), ref.path)
	}
	return r.resolveSecret(b, i, refTarget{tEnv.ID, ref.path, ref.key}, cleanText(body, 80), top)
}

// findApp matches a cross-app reference: an exact id, else the name rules.
func (r *resolver) findApp(name string) *apiApp {
	apps := r.s.tokens.Apps
	for i := range apps {
		if apps[i].ID == name {
			return &apps[i]
		}
	}
	if i, _ := matchName(appNames(apps), name); i >= 0 {
		return &apps[i]
	}
	return nil
}

type reference struct{ app, env, path, key string }

func parseReference(body string) (reference, error) {
	var ref reference
	rest := body
	if i := strings.Index(rest, "::"); i >= 0 {
		ref.app, rest = rest[:i], rest[i+2:]
		if ref.app == "" {
			return ref, errors.New("empty application name before \"::\"")
		}
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		ref.env, rest = rest[:i], rest[i+1:]
	}
	if ref.app != "" && ref.env == "" {
		return ref, errors.New("cross-app references must specify an environment")
	}
	ref.path, ref.key = "/", rest
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		ref.path, ref.key = normalizePath(rest[:i]), rest[i+1:]
	}
	if ref.key == "" {
		return ref, errors.New("no key name")
	}
	return ref, nil
}
