// Package exec builds the environment the wrapped command receives and
// replaces the shim with that command (execve: same PID, signals go straight
// to the command). Callers import it as shimexec because its name shadows
// os/exec.
//
// Nothing here formats a value into an error: errors name variables and
// sizes only.
package exec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels; the exit code the caller maps to is in brackets.
var (
	ErrNUL           = errors.New("value contains a NUL byte")        // 65
	ErrTooLarge      = errors.New("environment too large for execve") // 65
	ErrInvalidName   = errors.New("invalid variable name")            // 65
	ErrNotFound      = errors.New("command not found")                // 127
	ErrNotExecutable = errors.New("command not executable")           // 126
)

// Var is one variable on its way to the command. Source is a human label
// ("phase:/", "file:.env") used in reports.
type Var struct {
	Name, Value, Source string
}

// Override records that the value Source gave to Name was replaced by the
// value from By.
type Override struct {
	Name, Source, By string
}

// Layer merges sources in order: for each Name the last source to set it wins.
// The merged list keeps the order in which each name first appeared, so that
// adding an override file does not reshuffle the environment. A name repeated
// inside one source is handled the same way (the later line wins) and
// reported with Source == By.
func Layer(sources ...[]Var) (merged []Var, overrides []Override) {
	idx := map[string]int{}
	for _, src := range sources {
		for _, v := range src {
			if i, ok := idx[v.Name]; ok {
				overrides = append(overrides, Override{Name: v.Name, Source: merged[i].Source, By: v.Source})
				merged[i] = v
				continue
			}
			idx[v.Name] = len(merged)
			merged = append(merged, v)
		}
	}
	return merged, overrides
}

// EnvOptions describes the inherited environment. Environ is normally
// os.Environ(); Scrub lists variables (the token ones) that must not reach
// the command from the inherited environment.
type EnvOptions struct {
	Environ     []string
	PreserveEnv bool
	Scrub       []string
}

// EnvAction says how a secret met the inherited environment.
type EnvAction int

const (
	Set                EnvAction = iota // the name was not inherited
	OverridesInherited                  // the secret replaced an inherited value
	Preserved                           // PreserveEnv: the inherited value stays, the secret is dropped
)

var envActionNames = [...]string{Set: "set", OverridesInherited: "overrides inherited", Preserved: "preserved"}

func (a EnvAction) String() string {
	if a >= 0 && int(a) < len(envActionNames) {
		return envActionNames[a]
	}
	return fmt.Sprintf("EnvAction(%d)", int(a))
}

// EnvEntry reports one secret: Size is the byte length of the secret's value
// (also for Preserved, where it is the size of the value that was dropped).
type EnvEntry struct {
	Name, Source string
	Action       EnvAction
	Size         int
}

// validName returns why name cannot be carried by execve, or "".
func validName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case strings.IndexByte(name, 0) >= 0:
		return "name contains a NUL byte"
	case strings.IndexByte(name, '=') >= 0:
		return "name contains '='"
	}
	return ""
}

// BuildEnv merges secrets into the inherited environment and returns the
// envp for execve, in which every name appears exactly once, plus one entry
// per distinct secret name in input order.
//
// Inherited environment: an environ may repeat a name, and programs disagree
// on which copy counts (libc, Go, Python and Node take the first; bash and
// dash the last). The first copy is kept because that is what the shim's own
// getenv saw, so "already set" under PreserveEnv means the value the user
// would have seen; os.Environ already applies the same rule, so passing it
// or a raw /proc/self/environ gives the same envp. Entries without '=' or with an empty name are dropped:
// no program can look them up by name. Names in Scrub are removed entirely.
//
// Order: the inherited variables in their order (a secret that overrides one
// takes its place), then secrets that were not inherited, in input order.
// Replacing in place keeps envp identical to the inherited one apart from
// the values that changed, which makes two runs easy to diff; since every
// name is unique afterwards, position no longer changes any lookup.
//
// A secret name repeated in secrets keeps its first position and its last
// value, as Layer would. Errors: ErrInvalidName for a name execve cannot
// carry, ErrNUL for a value with a NUL byte (checked for every secret, even
// one PreserveEnv would drop, so the outcome never depends on the caller's
// environment).
func BuildEnv(secrets []Var, o EnvOptions) (envp []string, entries []EnvEntry, err error) {
	// Check everything first so that a bad secret fails the same way
	// whatever the inherited environment holds.
	for _, s := range secrets {
		if r := validName(s.Name); r != "" {
			return nil, nil, fmt.Errorf("%w %q from %s: %s", ErrInvalidName, s.Name, s.Source, r)
		}
		if strings.IndexByte(s.Value, 0) >= 0 {
			return nil, nil, fmt.Errorf("variable %q from %s: %w, which execve cannot pass; deliver it as a file instead (--file %s)", s.Name, s.Source, ErrNUL, s.Name)
		}
	}

	scrub := make(map[string]bool, len(o.Scrub))
	for _, n := range o.Scrub {
		scrub[n] = true
	}

	// Secrets, deduplicated: later value, first position.
	secIdx := map[string]int{}
	var secs []Var
	for _, s := range secrets {
		if i, ok := secIdx[s.Name]; ok {
			secs[i] = s
			continue
		}
		secIdx[s.Name] = len(secs)
		secs = append(secs, s)
	}

	entries = make([]EnvEntry, len(secs))
	for i, s := range secs {
		entries[i] = EnvEntry{Name: s.Name, Source: s.Source, Action: Set, Size: len(s.Value)}
	}

	seen := map[string]bool{}
	envp = make([]string, 0, len(o.Environ)+len(secs))
	for _, kv := range o.Environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" || seen[name] || scrub[name] {
			continue
		}
		if strings.IndexByte(kv, 0) >= 0 {
			// Impossible for a real environ (C strings); an Environ built by
			// hand must not smuggle one into envp either.
			return nil, nil, fmt.Errorf("inherited variable %q: %w", name, ErrNUL)
		}
		seen[name] = true
		if i, ok := secIdx[name]; ok {
			if o.PreserveEnv {
				entries[i].Action = Preserved
			} else {
				entries[i].Action = OverridesInherited
				kv = name + "=" + secs[i].Value
			}
		}
		envp = append(envp, kv)
	}
	for i, s := range secs {
		if entries[i].Action == Set {
			envp = append(envp, s.Name+"="+s.Value)
		}
	}
	return envp, entries, nil
}
