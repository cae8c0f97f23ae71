package fetch

import (
	"fmt"
	"strings"
)

// normalizePath is Phase's folder normalisation: a leading "/", no empty
// segments, no trailing "/", and "/" for the root.
func normalizePath(p string) string {
	segs := strings.Split(p, "/")
	kept := segs[:0]
	for _, s := range segs {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return "/" + strings.Join(kept, "/")
}

// normTag is the Phase tag comparison form: case-insensitive, "_" and " "
// the same, surrounding space ignored.
func normTag(t string) string {
	return strings.TrimSpace(strings.ToLower(strings.ReplaceAll(t, "_", " ")))
}

// tagFilter keeps secrets that carry at least one of the wanted tags. Unlike
// the Phase CLI (which treats the whole --tags value as one substring needle,
// so "prod,config" only matches a tag containing that literal text), this is
// a real list and each entry must equal a tag after normalisation: "prod"
// does not select a secret tagged "production".
type tagFilter map[string]bool

func newTagFilter(tags []string) tagFilter {
	f := tagFilter{}
	for _, t := range tags {
		if n := normTag(t); n != "" {
			f[n] = true
		}
	}
	if len(f) == 0 {
		return nil
	}
	return f
}

func (f tagFilter) keep(tags []string) bool {
	if f == nil {
		return true
	}
	for _, t := range tags {
		if f[normTag(t)] {
			return true
		}
	}
	return false
}

// matchName finds want among names: a unique case-insensitive exact match
// (case-sensitive exact breaks a tie), else a unique case-insensitive
// substring. It returns the index, or -1 with the candidates that made the
// answer ambiguous (nil when nothing matched at all).
func matchName(names []string, want string) (int, []string) {
	lw := strings.ToLower(want)
	var exact []int
	for i, n := range names {
		if strings.ToLower(n) == lw {
			exact = append(exact, i)
		}
	}
	if len(exact) == 1 {
		return exact[0], nil
	}
	if len(exact) > 1 {
		var cs []int
		for _, i := range exact {
			if names[i] == want {
				cs = append(cs, i)
			}
		}
		if len(cs) == 1 {
			return cs[0], nil
		}
		return -1, pickNames(names, exact)
	}
	var sub []int
	for i, n := range names {
		if lw != "" && strings.Contains(strings.ToLower(n), lw) {
			sub = append(sub, i)
		}
	}
	if len(sub) == 1 {
		return sub[0], nil
	}
	return -1, pickNames(names, sub)
}

func pickNames(names []string, idx []int) []string {
	if len(idx) == 0 {
		return nil
	}
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = names[j]
	}
	return out
}

// quoteList renders names for an error message, bounded so a large
// organisation does not produce a page of text.
func quoteList(names []string) string {
	const limit = 20
	var b strings.Builder
	for i, n := range names {
		if i == limit {
			fmt.Fprintf(&b, " and %d more", len(names)-limit)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", cleanText(n, 80))
	}
	if len(names) == 0 {
		return "(none)"
	}
	return b.String()
}

func appNames(apps []apiApp) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

func envNames(envs []apiEnv) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Name
	}
	return out
}

// selectApp applies --app-id (exact) or --app (name rules of matchName).
// With neither, a token that can read exactly one application uses it: a
// service token is scoped to one app, and there is nothing to choose.
func selectApp(apps []apiApp, appID, appName string) (*apiApp, error) {
	switch {
	case appID != "":
		for i := range apps {
			if apps[i].ID == appID {
				return &apps[i], nil
			}
		}
		return nil, &deniedError{fmt.Errorf("%w: no application with id %q is visible to this token; it can read %s", ErrConfig, cleanText(appID, 80), describeApps(apps))}
	case appName != "":
		i, cands := matchName(appNames(apps), appName)
		if i >= 0 {
			return &apps[i], nil
		}
		if cands != nil {
			return nil, fmt.Errorf("%w: application name %q is ambiguous: it matches %s; use the full name or --app-id", ErrConfig, cleanText(appName, 80), quoteList(cands))
		}
		return nil, &deniedError{fmt.Errorf("%w: no application named %q is visible to this token; it can read %s", ErrConfig, cleanText(appName, 80), describeApps(apps))}
	}
	if len(apps) == 1 {
		return &apps[0], nil
	}
	return nil, fmt.Errorf("%w: no application given (--app-id, --app or a .phase.json) and the token can read %s", ErrConfig, describeApps(apps))
}

func describeApps(apps []apiApp) string {
	if len(apps) == 0 {
		return "no application"
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name + " (" + a.ID + ")"
	}
	return quoteList(names)
}

// selectEnv applies the environment rules (prod → Production).
func selectEnv(app *apiApp, name string) (*apiEnv, error) {
	i, cands := matchName(envNames(app.Envs), name)
	if i >= 0 {
		return &app.Envs[i], nil
	}
	if cands != nil {
		return nil, fmt.Errorf("%w: environment %q is ambiguous in application %q: it matches %s", ErrConfig, cleanText(name, 80), cleanText(app.Name, 80), quoteList(cands))
	}
	return nil, &deniedError{fmt.Errorf("%w: no environment %q in application %q visible to this token; environments: %s", ErrConfig, cleanText(name, 80), cleanText(app.Name, 80), quoteList(envNames(app.Envs)))}
}
