package exec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	a, b, c := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	writeFile(t, filepath.Join(a, "tool"), 0o755)
	writeFile(t, filepath.Join(a, "plain"), 0o644)
	writeFile(t, filepath.Join(b, "plain"), 0o755)
	writeFile(t, filepath.Join(b, "onlyplain"), 0o644)
	writeFile(t, filepath.Join(c, "onlyplain"), 0o600)
	writeFile(t, filepath.Join(root, "cwdtool"), 0o755)
	if err := os.MkdirAll(filepath.Join(a, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c, "isdir"), 0o755)
	if err := os.MkdirAll(filepath.Join(c, "onlydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Relative PATH entries must never match, whatever the working directory.
	t.Chdir(root)

	path := "PATH=" + a + "::.:a:" + b + ":" + c
	for _, tc := range []struct {
		name, file string
		envp       []string
		want       string
		wantErr    error
	}{
		{name: "first directory", file: "tool", envp: []string{path}, want: filepath.Join(a, "tool")},
		{name: "non-executable match is passed over", file: "plain", envp: []string{path}, want: filepath.Join(b, "plain")},
		{name: "directory match is passed over", file: "isdir", envp: []string{path}, want: filepath.Join(c, "isdir")},
		{name: "only non-executable matches: 126", file: "onlyplain", envp: []string{path}, wantErr: ErrNotExecutable},
		{name: "only a directory: 126", file: "onlydir", envp: []string{path}, wantErr: ErrNotExecutable},
		{name: "nowhere: 127", file: "missing", envp: []string{path}, wantErr: ErrNotFound},
		{name: "empty and relative entries skip the cwd", file: "cwdtool", envp: []string{"PATH=:.:" + "./"}, wantErr: ErrNotFound},
		{name: "relative entry into an existing dir is skipped", file: "tool", envp: []string{"PATH=a"}, wantErr: ErrNotFound},
		{name: "empty PATH lists nothing", file: "tool", envp: []string{"PATH="}, wantErr: ErrNotFound},
		{name: "first PATH wins, as getenv", file: "tool", envp: []string{"PATH=" + a, "PATH=" + b}, want: filepath.Join(a, "tool")},
		{name: "PATH= prefix of another name is not PATH", file: "tool", envp: []string{"PATHX=" + a, "PATH=" + b}, wantErr: ErrNotFound},
		{name: "slash: used as given", file: "./cwdtool", envp: []string{"PATH="}, want: "./cwdtool"},
		{name: "slash: absolute", file: filepath.Join(a, "tool"), want: filepath.Join(a, "tool")},
		{name: "slash: relative into a dir", file: "a/tool", want: "a/tool"},
		{name: "slash: missing", file: "a/missing", wantErr: ErrNotFound},
		{name: "slash: not executable", file: "a/plain", wantErr: ErrNotExecutable},
		{name: "slash: a directory", file: "a/", wantErr: ErrNotExecutable},
		{name: "slash: through a file", file: "a/tool/x", wantErr: ErrNotFound},
		{name: "empty name", file: "", envp: []string{path}, wantErr: ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LookPath(tc.file, tc.envp)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("LookPath(%q) error = %v, want %v", tc.file, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("LookPath(%q) = %q, want %q", tc.file, got, tc.want)
			}
		})
	}
}

func TestLookPathDefault(t *testing.T) {
	got, err := LookPath("env", []string{"HOME=/"})
	if err != nil {
		t.Skipf("no env in %s: %v", DefaultPath, err)
	}
	if !slices.Contains(filepath.SplitList(DefaultPath), filepath.Dir(got)) {
		t.Errorf("LookPath(env) = %q, not from %s", got, DefaultPath)
	}
}

// PATH may be a secret (a Phase key named PATH): no LookPath error may quote
// it, whichever way the search fails.
func TestLookPathErrorsNeverQuotePATH(t *testing.T) {
	dir := t.TempDir()
	secretDir := filepath.Join(dir, "s3cr3t-marker")
	if err := os.MkdirAll(filepath.Join(secretDir, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secretDir, "noexec"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	envp := []string{"PATH=" + secretDir + ":relative-marker"}
	for _, cmd := range []string{"missing", "isdir", "noexec"} {
		_, err := LookPath(cmd, envp)
		if err == nil {
			t.Fatalf("%s: LookPath succeeded", cmd)
		}
		if strings.Contains(err.Error(), "marker") {
			t.Errorf("%s: the error quotes PATH (%d bytes of message)", cmd, len(err.Error()))
		}
	}
}
