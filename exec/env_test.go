package exec

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLayer(t *testing.T) {
	phase := []Var{{"A", "pa", "phase:/"}, {"B", "pb", "phase:/"}, {"C", "pc", "phase:/"}}
	dotenv := []Var{{"B", "fb", "file:.env"}, {"D", "fd", "file:.env"}}
	local := []Var{{"A", "la", "file:local.json"}, {"D", "ld", "file:local.json"}, {"D", "ld2", "file:local.json"}}
	for _, tc := range []struct {
		name    string
		sources [][]Var
		want    []Var
		wantOv  []Override
	}{
		{name: "nothing"},
		{name: "one source", sources: [][]Var{phase}, want: phase},
		{
			name:    "later wins, first position kept",
			sources: [][]Var{phase, dotenv, local},
			want: []Var{
				{"A", "la", "file:local.json"},
				{"B", "fb", "file:.env"},
				{"C", "pc", "phase:/"},
				{"D", "ld2", "file:local.json"},
			},
			wantOv: []Override{
				{"B", "phase:/", "file:.env"},
				{"A", "phase:/", "file:local.json"},
				{"D", "file:.env", "file:local.json"},
				{"D", "file:local.json", "file:local.json"},
			},
		},
		{
			name:    "empty source in between",
			sources: [][]Var{nil, dotenv, {}},
			want:    dotenv,
		},
		{
			name:    "names are case sensitive",
			sources: [][]Var{{{"a", "1", "x"}}, {{"A", "2", "y"}}},
			want:    []Var{{"a", "1", "x"}, {"A", "2", "y"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ov := Layer(tc.sources...)
			// Layer copies Vars, so values may be compared here: they are
			// fake. Real secrets are compared with sameEnv below.
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOv, ov); diff != "" {
				t.Errorf("overrides (-want +got):\n%s", diff)
			}
		})
	}
}

// sameEnv compares two envp lists without ever printing a value: it reports
// names, positions and lengths only, so that a test fed real-looking secrets
// cannot leak them into CI logs.
func sameEnv(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d entries %v, want %d entries %v", what, len(got), names(got), len(want), names(want))
		return
	}
	for i := range got {
		if got[i] == want[i] {
			continue
		}
		gn, wn := envName(got[i]), envName(want[i])
		if gn != wn {
			t.Errorf("%s: entry %d is %q, want %q", what, i, gn, wn)
			continue
		}
		d := 0
		for d < len(got[i]) && d < len(want[i]) && got[i][d] == want[i][d] {
			d++
		}
		t.Errorf("%s: %s: got %d bytes, want %d bytes, first difference at byte %d",
			what, gn, len(got[i]), len(want[i]), d)
	}
}

func names(envp []string) []string {
	n := make([]string, len(envp))
	for i, kv := range envp {
		n[i] = envName(kv)
	}
	return n
}

func TestBuildEnv(t *testing.T) {
	inherited := []string{
		"PATH=/usr/bin:/bin",
		"HOME=/root",
		"PHASE_SERVICE_TOKEN=pss_service:v2:fake",
		"DUP=first",
		"NOEQUALS",
		"=orphan",
		"DUP=second",
		"PHASE_SERVICE_TOKEN_FILE=/run/secrets/t",
		"PHASE_SERVICE_TOKEN=again",
		"EMPTY=",
	}
	scrub := []string{"PHASE_SERVICE_TOKEN", "PHASE_SERVICE_TOKEN_FILE"}
	for _, tc := range []struct {
		name        string
		secrets     []Var
		opt         EnvOptions
		wantEnv     []string
		wantEntries []EnvEntry
		wantErr     error
		errHas      string
	}{
		{
			name:    "nothing to add, inherited deduplicated and scrubbed",
			opt:     EnvOptions{Environ: inherited, Scrub: scrub},
			wantEnv: []string{"PATH=/usr/bin:/bin", "HOME=/root", "DUP=first", "EMPTY="},
		},
		{
			name:    "without scrub the token stays, once",
			opt:     EnvOptions{Environ: inherited},
			wantEnv: []string{"PATH=/usr/bin:/bin", "HOME=/root", "PHASE_SERVICE_TOKEN=pss_service:v2:fake", "DUP=first", "PHASE_SERVICE_TOKEN_FILE=/run/secrets/t", "EMPTY="},
		},
		{
			name: "secrets replace in place and new ones follow in input order",
			secrets: []Var{
				{"NEW2", "n2", "phase:/"},
				{"DUP", "s", "phase:/"},
				{"NEW1", "a b\n'\"$HOME`*#=\t ", "file:.env"},
				{"EMPTY", "now set", "file:.env"},
			},
			opt: EnvOptions{Environ: inherited, Scrub: scrub},
			wantEnv: []string{
				"PATH=/usr/bin:/bin", "HOME=/root", "DUP=s", "EMPTY=now set",
				"NEW2=n2", "NEW1=a b\n'\"$HOME`*#=\t ",
			},
			wantEntries: []EnvEntry{
				{"NEW2", "phase:/", Set, 2},
				{"DUP", "phase:/", OverridesInherited, 1},
				{"NEW1", "file:.env", Set, 17},
				{"EMPTY", "file:.env", OverridesInherited, 7},
			},
		},
		{
			name:    "preserve-env keeps the first inherited value",
			secrets: []Var{{"DUP", "s", "phase:/"}, {"HOME", "/nope", "phase:/"}, {"EMPTY", "x", "phase:/"}, {"NEW", "n", "phase:/"}},
			opt:     EnvOptions{Environ: inherited, Scrub: scrub, PreserveEnv: true},
			wantEnv: []string{"PATH=/usr/bin:/bin", "HOME=/root", "DUP=first", "EMPTY=", "NEW=n"},
			wantEntries: []EnvEntry{
				{"DUP", "phase:/", Preserved, 1},
				{"HOME", "phase:/", Preserved, 5},
				{"EMPTY", "phase:/", Preserved, 1},
				{"NEW", "phase:/", Set, 1},
			},
		},
		{
			name:    "a secret may carry a scrubbed name: the inherited copies go, the secret is set once",
			secrets: []Var{{"PHASE_SERVICE_TOKEN", "from-phase", "phase:/"}},
			opt:     EnvOptions{Environ: inherited, Scrub: scrub, PreserveEnv: true},
			wantEnv: []string{"PATH=/usr/bin:/bin", "HOME=/root", "DUP=first", "EMPTY=", "PHASE_SERVICE_TOKEN=from-phase"},
			wantEntries: []EnvEntry{
				{"PHASE_SERVICE_TOKEN", "phase:/", Set, 10},
			},
		},
		{
			name:        "repeated secret: first position, last value",
			secrets:     []Var{{"X", "1", "a"}, {"Y", "2", "a"}, {"X", "3", "b"}},
			wantEnv:     []string{"X=3", "Y=2"},
			wantEntries: []EnvEntry{{"X", "b", Set, 1}, {"Y", "a", Set, 1}},
		},
		{
			name:        "non-portable names execve can carry are passed",
			secrets:     []Var{{"my-key", "v", "a"}, {"ÜBER", "w", "a"}},
			wantEnv:     []string{"my-key=v", "ÜBER=w"},
			wantEntries: []EnvEntry{{"my-key", "a", Set, 1}, {"ÜBER", "a", Set, 1}},
		},
		{
			name:    "NUL in a value",
			secrets: []Var{{"OK", "v", "a"}, {"BINARY", "a\x00b", "file:.env"}},
			opt:     EnvOptions{Environ: inherited, PreserveEnv: true},
			wantErr: ErrNUL,
			errHas:  `variable "BINARY" from file:.env: value contains a NUL byte, which execve cannot pass; deliver it as a file instead (--file BINARY)`,
		},
		{
			name:    "NUL in a value even when preserve-env would drop it",
			secrets: []Var{{"HOME", "\x00", "a"}},
			opt:     EnvOptions{Environ: inherited, PreserveEnv: true},
			wantErr: ErrNUL,
			errHas:  `"HOME"`,
		},
		{
			name:    "equals sign in a name",
			secrets: []Var{{"A=B", "v", "a"}},
			wantErr: ErrInvalidName,
			errHas:  `"A=B"`,
		},
		{
			name:    "empty name",
			secrets: []Var{{"", "v", "a"}},
			wantErr: ErrInvalidName,
			errHas:  `""`,
		},
		{
			name:    "NUL in a name",
			secrets: []Var{{"A\x00", "v", "a"}},
			wantErr: ErrInvalidName,
		},
		{
			name:    "NUL smuggled into a hand-built environ",
			opt:     EnvOptions{Environ: []string{"X=a\x00b"}},
			wantErr: ErrNUL,
			errHas:  `inherited variable "X"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, entries, err := BuildEnv(tc.secrets, tc.opt)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not contain %q", err, tc.errHas)
				}
				return
			}
			sameEnv(t, "envp", env, tc.wantEnv)
			if tc.wantEntries == nil {
				tc.wantEntries = []EnvEntry{}
			}
			if diff := cmp.Diff(tc.wantEntries, entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

// A secret value must never appear in an error, whatever goes wrong.
func TestBuildEnvErrorsHideValues(t *testing.T) {
	const v = "hunter2-\x00-topsecret"
	_, _, err := BuildEnv([]Var{{"PASSWORD", v, "phase:/"}}, EnvOptions{})
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error missing or leaks the value (%d bytes of message)", len(fmt.Sprint(err)))
	}
}

func TestEnvActionString(t *testing.T) {
	got := []string{Set.String(), OverridesInherited.String(), Preserved.String(), EnvAction(9).String()}
	want := []string{"set", "overrides inherited", "preserved", "EnvAction(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

// FuzzBuildEnv feeds arbitrary environs and secrets: BuildEnv must never
// panic, and a successful envp must hold each name exactly once, every
// secret that was not preserved with its last value, and no scrubbed name
// that did not come from a secret.
func FuzzBuildEnv(f *testing.F) {
	f.Add("PATH=/bin\nA=1\nA=2\nTOKEN=x\nNOEQ\n=v", "A=s\nB=t\nA=u\nTOKEN=y", true)
	f.Add("", "K=a\x00b", false)
	f.Add("X=1", "=v\nY", false)
	f.Fuzz(func(t *testing.T, environ, secrets string, preserve bool) {
		var env []string
		if environ != "" {
			env = strings.Split(environ, "\n")
		}
		var secs []Var
		if secrets != "" {
			for _, line := range strings.Split(secrets, "\n") {
				n, v, _ := strings.Cut(line, "=")
				secs = append(secs, Var{Name: n, Value: v, Source: "fuzz"})
			}
		}
		envp, entries, err := BuildEnv(secs, EnvOptions{Environ: env, PreserveEnv: preserve, Scrub: []string{"TOKEN"}})
		if err != nil {
			if envp != nil || entries != nil {
				t.Fatal("partial result returned with an error")
			}
			return
		}
		got := map[string]string{}
		for _, kv := range envp {
			n, v, ok := strings.Cut(kv, "=")
			if !ok || n == "" {
				t.Fatalf("malformed envp entry for name %q", n)
			}
			if strings.IndexByte(kv, 0) >= 0 {
				t.Fatalf("NUL in envp entry %q", n)
			}
			if _, dup := got[n]; dup {
				t.Fatalf("name %q twice in envp", n)
			}
			got[n] = v
		}
		last := map[string]string{}
		for _, s := range secs {
			last[s.Name] = s.Value
		}
		if len(entries) != len(last) {
			t.Fatalf("%d entries for %d distinct secrets", len(entries), len(last))
		}
		for _, e := range entries {
			v, ok := got[e.Name]
			if !ok {
				t.Fatalf("secret %q missing from envp", e.Name)
			}
			if e.Action != Preserved && v != last[e.Name] {
				t.Fatalf("secret %q: got %d bytes, want %d bytes", e.Name, len(v), len(last[e.Name]))
			}
			if e.Action == Preserved && !preserve {
				t.Fatalf("%q preserved without PreserveEnv", e.Name)
			}
		}
		if _, ok := got["TOKEN"]; ok {
			if _, fromSecret := last["TOKEN"]; !fromSecret {
				t.Fatal("scrubbed TOKEN survived")
			}
		}
	})
}

// BenchmarkBuildEnv: 1,000 secrets into a 100-variable environment, the
// large end of a Phase app.
func BenchmarkBuildEnv(b *testing.B) {
	var environ []string
	for i := range 100 {
		environ = append(environ, fmt.Sprintf("INHERITED_%d=some value %d", i, i))
	}
	var secrets []Var
	for i := range 1000 {
		secrets = append(secrets, Var{Name: fmt.Sprintf("SECRET_%d", i), Value: strings.Repeat("v", 64), Source: "phase:/"})
	}
	for b.Loop() {
		if _, _, err := BuildEnv(secrets, EnvOptions{Environ: environ, Scrub: []string{"PHASE_SERVICE_TOKEN"}}); err != nil {
			b.Fatal(err)
		}
	}
}
