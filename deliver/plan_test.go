package deliver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	shimexec "github.com/phase-shim/phase-shim/exec"
)

// shown is a Var as a failure message may show it: the value only for the
// *_FILE paths, a length for secrets.
type shown struct {
	Name, Source string
	Path         string
	Len          int
}

func show(vars []shimexec.Var, delivered map[string]bool) []shown {
	out := make([]shown, len(vars))
	for i, v := range vars {
		out[i] = shown{Name: v.Name, Source: v.Source, Len: len(v.Value)}
		if delivered[v.Name] {
			out[i].Path, out[i].Len = v.Value, 0
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	vars := []shimexec.Var{
		{Name: "DATABASE_URL", Value: "postgres://u:pw-1@db/x", Source: "phase:/"},
		{Name: "TLS_CERT_PEM", Value: "-----BEGIN CERTIFICATE-----\nx\n", Source: "phase:/"},
		{Name: "TLS_KEY_PEM", Value: "-----BEGIN PRIVATE KEY-----\ny\n", Source: "file:.env"},
		{Name: "API_KEY", Value: "sk-live-0123456789", Source: "phase:/"},
		{Name: "db_pass", Value: "hunter2-lower", Source: "phase:/"},
	}
	values := make([]string, len(vars))
	for i, v := range vars {
		values[i] = v.Value
	}
	file := func(i int) File {
		v := vars[i]
		return File{Key: v.Name, Var: v.Name + "_FILE", Path: filepath.Join(dir, v.Name), Size: len(v.Value), Source: v.Source}
	}
	tests := []struct {
		name     string
		vars     []shimexec.Var
		patterns []string
		files    []File
		wantVars []string // names, in order
		err      error
	}{
		{name: "no patterns", patterns: nil, wantVars: []string{"DATABASE_URL", "TLS_CERT_PEM", "TLS_KEY_PEM", "API_KEY", "db_pass"}},
		{name: "exact", patterns: []string{"API_KEY"}, files: []File{file(3)},
			wantVars: []string{"DATABASE_URL", "TLS_CERT_PEM", "TLS_KEY_PEM", "API_KEY_FILE", "db_pass"}},
		{name: "suffix glob", patterns: []string{"*_PEM"}, files: []File{file(1), file(2)},
			wantVars: []string{"DATABASE_URL", "TLS_CERT_PEM_FILE", "TLS_KEY_PEM_FILE", "API_KEY", "db_pass"}},
		{name: "overlapping patterns deliver once", patterns: []string{"TLS_*", "*_PEM", "TLS_KEY_PEM"}, files: []File{file(1), file(2)},
			wantVars: []string{"DATABASE_URL", "TLS_CERT_PEM_FILE", "TLS_KEY_PEM_FILE", "API_KEY", "db_pass"}},
		{name: "question mark and class", patterns: []string{"TLS_[CK]?Y_PEM", "db_pas?"}, files: []File{file(2), file(4)},
			wantVars: []string{"DATABASE_URL", "TLS_CERT_PEM", "TLS_KEY_PEM_FILE", "API_KEY", "db_pass_FILE"}},
		{name: "star takes all", patterns: []string{"*"}, files: []File{file(0), file(1), file(2), file(3), file(4)},
			wantVars: []string{"DATABASE_URL_FILE", "TLS_CERT_PEM_FILE", "TLS_KEY_PEM_FILE", "API_KEY_FILE", "db_pass_FILE"}},
		{name: "literal missing fails closed", patterns: []string{"API_KEY", "STRIPE_KEY"}, err: ErrNoMatch},
		{name: "glob missing fails closed", patterns: []string{"*_CRT"}, err: ErrNoMatch},
		{name: "case-sensitive", patterns: []string{"DB_PASS"}, err: ErrNoMatch},
		{name: "bad glob", patterns: []string{"TLS_[A"}, err: ErrPattern},
		{name: "empty pattern", patterns: []string{""}, err: ErrPattern},
		{name: "file var collides with a secret",
			vars:     []shimexec.Var{{Name: "CERT", Value: "value-one", Source: "phase:/"}, {Name: "CERT_FILE", Value: "value-two", Source: "file:.env"}},
			patterns: []string{"CERT"}, err: ErrName},
		{name: "star over KEY and KEY_FILE collides",
			vars:     []shimexec.Var{{Name: "CERT", Value: "value-one", Source: "phase:/"}, {Name: "CERT_FILE", Value: "value-two", Source: "file:.env"}},
			patterns: []string{"*"}, err: ErrName},
		{name: "KEY_FILE alone is fine",
			vars:     []shimexec.Var{{Name: "CERT_FILE", Value: "value-two", Source: "file:.env"}},
			patterns: []string{"CERT_FILE"}, files: []File{{Key: "CERT_FILE", Var: "CERT_FILE_FILE", Path: filepath.Join(dir, "CERT_FILE"), Size: 9, Source: "file:.env"}},
			wantVars: []string{"CERT_FILE_FILE"}},
		{name: "slash in a kept name", vars: []shimexec.Var{{Name: "a/b", Value: "value-one"}}, patterns: []string{"a/b"}, err: ErrName},
		{name: "empty name", vars: []shimexec.Var{{Name: "", Value: "value-one"}}, patterns: []string{"*"}, err: ErrName},
		{name: "dot-dot as a kept name", vars: []shimexec.Var{{Name: "..", Value: "value-one"}}, patterns: []string{".."}, err: ErrName},
		{name: "over NAME_MAX", vars: []shimexec.Var{{Name: strings.Repeat("K", 256), Value: "value-one"}}, patterns: []string{"K*"}, err: ErrName},
		{name: "duplicate input name", vars: []shimexec.Var{{Name: "A", Value: "value-one"}, {Name: "A", Value: "value-two"}}, patterns: []string{"A"}, err: ErrName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.vars
			if in == nil {
				in = vars
			}
			before := show(in, nil)
			d, err := Plan(in, Options{Patterns: tc.patterns, Dir: dir})
			noValueIn(t, err, values...)
			noValueIn(t, err, "value-one", "value-two")
			wantErr(t, err, tc.err)
			if diff := cmp.Diff(before, show(in, nil)); diff != "" {
				t.Errorf("Plan modified its input (-before +after):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.files, d.Files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			var names []string
			delivered := map[string]bool{}
			for _, f := range d.Files {
				delivered[f.Var] = true
			}
			for i, v := range d.Vars {
				names = append(names, v.Name)
				if delivered[v.Name] {
					if want := filepath.Join(dir, strings.TrimSuffix(v.Name, FileSuffix)); v.Value != want {
						t.Errorf("%s = %q, want %q", v.Name, v.Value, want)
					}
					if v.Source != in[i].Source {
						t.Errorf("%s: source %q, want %q", v.Name, v.Source, in[i].Source)
					}
				} else if v != in[i] {
					t.Errorf("%s changed: %+v", v.Name, show([]shimexec.Var{v}, nil))
				}
			}
			if diff := cmp.Diff(tc.wantVars, names); diff != "" {
				t.Errorf("var names (-want +got):\n%s", diff)
			}
			if len(d.Files) > 0 && d.Dir != dir {
				t.Errorf("Dir = %q, want %q", d.Dir, dir)
			}
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("Plan created %s (err %v); it must not write", dir, err)
			}
			if s := d.String(); strings.Contains(s, "postgres") || strings.Contains(s, "BEGIN") || strings.Contains(s, "hunter2") {
				t.Errorf("String() shows a value: %d bytes", len(s))
			}
		})
	}
}

func TestPlanNoMatchNamesPatterns(t *testing.T) {
	_, err := Plan([]shimexec.Var{{Name: "A", Value: "x"}}, Options{Patterns: []string{"A", "B_*", "C"}, Dir: t.TempDir()})
	wantErr(t, err, ErrNoMatch)
	for _, p := range []string{`"B_*"`, `"C"`} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name pattern %s", err, p)
		}
	}
	if strings.Contains(err.Error(), `"A"`) {
		t.Errorf("error %q names the pattern that matched", err)
	}
}

func TestPlanCollisionNamesBoth(t *testing.T) {
	vars := []shimexec.Var{{Name: "CERT", Value: "value-one", Source: "phase:/"}, {Name: "CERT_FILE", Value: "value-two", Source: "file:.env"}}
	_, err := Plan(vars, Options{Patterns: []string{"CERT"}, Dir: t.TempDir()})
	wantErr(t, err, ErrName)
	for _, s := range []string{"CERT", "CERT_FILE", "file:.env"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	vars := []shimexec.Var{{Name: "K", Value: "v"}}
	t.Run("run/secrets creatable", func(t *testing.T) {
		run := filepath.Join(t.TempDir(), "secrets")
		setRunSecrets(t, run)
		d, err := Plan(vars, Options{Patterns: []string{"K"}})
		wantErr(t, err, nil)
		if want := filepath.Join(run, DefaultDirName); d.Dir != want {
			t.Errorf("Dir = %q, want %q", d.Dir, want)
		}
		if _, err := os.Lstat(run); !os.IsNotExist(err) {
			t.Errorf("Plan created %s", run)
		}
		wantErr(t, d.Write(), nil)
		checkMode(t, d.Dir, os.ModeDir|0o700)
	})
	t.Run("run/secrets exists", func(t *testing.T) {
		run := t.TempDir()
		setRunSecrets(t, run)
		d, err := Plan(vars, Options{Patterns: []string{"K"}})
		wantErr(t, err, nil)
		if want := filepath.Join(run, DefaultDirName); d.Dir != want {
			t.Errorf("Dir = %q, want %q", d.Dir, want)
		}
	})
	t.Run("run/secrets impossible", func(t *testing.T) {
		base := t.TempDir()
		notDir := filepath.Join(base, "file")
		if err := os.WriteFile(notDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		setRunSecrets(t, filepath.Join(notDir, "secrets"))
		tmp := t.TempDir()
		d, err := Plan(vars, Options{Patterns: []string{"K"}, TmpDir: tmp})
		wantErr(t, err, nil)
		if filepath.Dir(d.Dir) != tmp || !strings.HasPrefix(filepath.Base(d.Dir), DefaultDirName+"-") {
			t.Fatalf("Dir = %q, want %s/%s-*", d.Dir, tmp, DefaultDirName)
		}
		d2, err := Plan(vars, Options{Patterns: []string{"K"}, TmpDir: tmp})
		wantErr(t, err, nil)
		if d2.Dir == d.Dir {
			t.Errorf("two plans share the fallback directory %s", d.Dir)
		}
		if _, err := os.Lstat(d.Dir); !os.IsNotExist(err) {
			t.Errorf("Plan created %s", d.Dir)
		}
		wantErr(t, d.Write(), nil)
		checkMode(t, d.Dir, os.ModeDir|0o700)
	})
	t.Run("run/secrets is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "secrets")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		setRunSecrets(t, f)
		tmp := t.TempDir()
		d, err := Plan(vars, Options{Patterns: []string{"K"}, TmpDir: tmp})
		wantErr(t, err, nil)
		if filepath.Dir(d.Dir) != tmp {
			t.Errorf("Dir = %q, want one under %s", d.Dir, tmp)
		}
	})
	t.Run("no patterns, no directory", func(t *testing.T) {
		setRunSecrets(t, filepath.Join(t.TempDir(), "secrets"))
		d, err := Plan(vars, Options{})
		wantErr(t, err, nil)
		if d.Dir != "" || len(d.Files) != 0 || len(d.Warnings) != 0 {
			t.Errorf("empty plan has Dir %q, %d files, %d warnings", d.Dir, len(d.Files), len(d.Warnings))
		}
		wantErr(t, d.Write(), nil)
	})
	t.Run("relative dir made absolute", func(t *testing.T) {
		t.Chdir(t.TempDir())
		d, err := Plan(vars, Options{Patterns: []string{"K"}, Dir: "s"})
		wantErr(t, err, nil)
		if !filepath.IsAbs(d.Dir) || !filepath.IsAbs(d.Vars[0].Value) {
			t.Errorf("Dir %q / K_FILE %q not absolute", d.Dir, d.Vars[0].Value)
		}
	})
}

func checkMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode() & (os.ModeType | os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky); got != want {
		t.Errorf("%s: mode %v, want %v", p, got, want)
	}
}

// TestCheckWritable: what `check` can tell without writing. Running as root,
// access(2) allows everything on a writable filesystem, so the cases that
// can fail here are the ones a directory cannot be made under.
func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		ok        bool
	}{
		{"existing", dir, true},
		{"missing, parent exists", filepath.Join(dir, "a"), true},
		{"missing, several levels", filepath.Join(dir, "a", "b", "c"), true},
		{"a file", file, false},
		{"under a file", filepath.Join(file, "sub"), false},
		{"deep under a file", filepath.Join(file, "sub", "deeper"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWritable(tc.dir)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckWritable: %v", err)
				}
				if _, err := os.Lstat(tc.dir); tc.dir != dir && err == nil {
					t.Errorf("CheckWritable created %s", tc.dir)
				}
				return
			}
			wantErr(t, err, ErrWrite)
		})
	}
}
