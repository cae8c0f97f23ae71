package deliver

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/format"
)

// nasty holds the values the `export $(cat …)` pattern mangles.
var nasty = []shimexec.Var{
	{Name: "SPACES", Value: "two  words  and trailing  ", Source: "phase:/"},
	{Name: "QUOTES", Value: `it's "quoted" \ back\slash`, Source: "phase:/"},
	{Name: "SHELLY", Value: "$HOME ${X} `id` $(id) * ? [a] ~ ; | & > <", Source: "phase:/"},
	{Name: "HASH_EQ", Value: "a=b#c # not a comment =", Source: "phase:/"},
	{Name: "MULTI", Value: "line1\nline2\r\n\n\ttabbed\n", Source: "phase:/"},
	{Name: "UNICODE", Value: "ünïcödé 日本語 🔑 \u2028", Source: "phase:/"},
	{Name: "EMPTY", Value: "", Source: "phase:/"},
	{Name: "PEM", Value: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", Source: "phase:/"},
}

func TestWriteAllReadsBack(t *testing.T) {
	for _, f := range []format.Format{format.Dotenv, format.JSON} {
		t.Run(string(f), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "conf", "app.env")
			wantErr(t, WriteAll(p, f, nasty), nil)
			checkMode(t, p, 0o400)
			got, err := fetch.ReadFile(p)
			wantErr(t, err, nil)
			if len(got) != len(nasty) {
				t.Fatalf("read back %d secrets, want %d", len(got), len(nasty))
			}
			for i, v := range nasty {
				if got[i].Key != v.Name {
					t.Errorf("secret %d: key %q, want %q", i, got[i].Key, v.Name)
					continue
				}
				sameValue(t, v.Name, []byte(got[i].Value), []byte(v.Value))
			}
		})
	}
}

func TestWriteAllIsTheFormatsBytes(t *testing.T) {
	for _, f := range format.Formats {
		if f == format.Docker {
			continue // refuses MULTI by design
		}
		t.Run(string(f), func(t *testing.T) {
			var want bytes.Buffer
			wantErr(t, format.Write(&want, f, nasty), nil)
			p := filepath.Join(t.TempDir(), "out")
			wantErr(t, WriteAll(p, f, nasty), nil)
			got, err := os.ReadFile(p)
			wantErr(t, err, nil)
			sameValue(t, "file "+string(f), got, want.Bytes())
		})
	}
}

func TestWriteAllLarge(t *testing.T) {
	vars := []shimexec.Var{{Name: "CHAIN_PEM", Value: pem1MiB(t)}, {Name: "NEXT", Value: "after the big one"}}
	p := filepath.Join(t.TempDir(), "big.json")
	wantErr(t, WriteAll(p, FormatForPath(p), vars), nil)
	got, err := fetch.ReadFile(p)
	wantErr(t, err, nil)
	if len(got) != 2 {
		t.Fatalf("read back %d secrets", len(got))
	}
	for i := range vars {
		sameValue(t, vars[i].Name, []byte(got[i].Value), []byte(vars[i].Value))
	}
}

func TestWriteAllRefusalLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	wantErr(t, WriteAll(p, format.Dotenv, nasty[:1]), nil)
	before, _ := os.ReadFile(p)

	bad := []shimexec.Var{{Name: "OK", Value: "fine"}, {Name: "BLOB", Value: "nul\x00inside-value"}}
	err := WriteAll(p, format.Dotenv, bad)
	wantErr(t, err, ErrFormat)
	if !errors.Is(err, fetch.ErrData) {
		t.Errorf("error %v does not match fetch.ErrData (exit 65)", err)
	}
	noValueIn(t, err, "inside-value")
	if !strings.Contains(err.Error(), "BLOB") {
		t.Errorf("error %q does not name the key", err)
	}
	after, _ := os.ReadFile(p)
	sameValue(t, "previous file", after, before)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries after a refused write, want 1", len(entries))
	}
}

func TestWriteAllSymlinkNotFollowed(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "app.env")
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	wantErr(t, WriteAll(p, format.Dotenv, nasty), nil)
	got, _ := os.ReadFile(victim)
	sameValue(t, "victim", got, []byte("precious"))
	checkMode(t, p, 0o400)
}

func TestWriteAllRewrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.env")
	for _, vars := range [][]shimexec.Var{nasty, nasty[:2], nil} {
		wantErr(t, WriteAll(p, format.Dotenv, vars), nil)
		got, err := fetch.ReadFile(p)
		wantErr(t, err, nil)
		if len(got) != len(vars) {
			t.Errorf("read back %d secrets, want %d", len(got), len(vars))
		}
		checkMode(t, p, 0o400)
	}
}

func TestWriteAllBadPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "isdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", filepath.Join(dir, "isdir"), filepath.Join(notDir, "x")} {
		err := WriteAll(p, format.Dotenv, nasty)
		wantErr(t, err, ErrWrite)
		noValueIn(t, err, "two  words", "PRIVATE KEY")
	}
	if _, err := os.Lstat(filepath.Join(dir, "isdir")); err != nil {
		t.Error(err)
	} else if st, _ := os.Lstat(filepath.Join(dir, "isdir")); !st.IsDir() {
		t.Error("directory replaced")
	}
}

func TestFormatForPath(t *testing.T) {
	for p, want := range map[string]format.Format{
		"/run/secrets/app.json": format.JSON,
		"config.JSON":           format.JSON,
		"env.sh":                format.Shell,
		".env":                  format.Dotenv,
		"/app/secrets":          format.Dotenv,
		"x.env":                 format.Dotenv,
	} {
		if got := FormatForPath(p); got != want {
			t.Errorf("FormatForPath(%q) = %q, want %q", p, got, want)
		}
	}
}

// The parent of a --write-file need not be private, unlike --files-dir.
func TestWriteAllSharedParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "app.env")
	wantErr(t, WriteAll(p, format.Dotenv, nasty), nil)
	checkMode(t, p, fs.FileMode(0o400))
}
