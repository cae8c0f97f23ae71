package deliver

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	shimexec "github.com/phase-shim/phase-shim/exec"
)

// FuzzPlan: for any key names and pattern, Plan either refuses with one of
// its error classes or returns a plan whose files all lie directly inside
// the directory, whose variables keep their count and order, and whose
// errors never hold a value.
func FuzzPlan(f *testing.F) {
	f.Add("DB_PASS\nTLS_PEM\nX", "*_PEM")
	f.Add("A\nA_FILE", "*")
	f.Add("../etc/passwd\nok", "*")
	f.Add("..\n.", "?*")
	f.Add("a/b\nc", "a/*")
	f.Add("K\x00\nL", "K*")
	f.Add("[\nK", "[")
	f.Add("", "")
	dir := filepath.Join(f.TempDir(), "secrets")
	f.Fuzz(func(t *testing.T, names, pattern string) {
		const secret = "fuzz-secret-value-7f3a"
		seen := map[string]bool{}
		var vars []shimexec.Var
		for _, n := range strings.Split(names, "\n") {
			if !seen[n] {
				seen[n] = true
				vars = append(vars, shimexec.Var{Name: n, Value: secret, Source: "fuzz"})
			}
		}
		d, err := Plan(vars, Options{Patterns: []string{pattern}, Dir: dir})
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatal("error message holds the value")
			}
			if !errors.Is(err, ErrPattern) && !errors.Is(err, ErrNoMatch) && !errors.Is(err, ErrName) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		if len(d.Vars) != len(vars) || len(d.Files) == 0 {
			t.Fatalf("%d vars from %d, %d files", len(d.Vars), len(vars), len(d.Files))
		}
		out := map[string]bool{}
		for _, v := range d.Vars {
			if out[v.Name] {
				t.Fatalf("variable %q twice", v.Name)
			}
			out[v.Name] = true
		}
		for _, fl := range d.Files {
			if filepath.Dir(fl.Path) != dir || filepath.Base(fl.Path) != fl.Key {
				t.Fatalf("key %q goes to %q, outside %s", fl.Key, fl.Path, dir)
			}
			if !out[fl.Var] || out[fl.Key] {
				t.Fatalf("key %q: %s missing or key still present", fl.Key, fl.Var)
			}
		}
	})
}
