package main

// Helpers for testdata/script/secretfiles.txtar (--file, --write-file),
// contributed by the deliver/ owner.

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// bigpem KEY N FILE.json WANT writes a JSON env file holding KEY with a
// PEM-shaped value of exactly N bytes (64-column lines between armour), and
// the raw value to WANT for samefile.
func cmdBigpem(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: bigpem KEY N file.json want")
	}
	n, err := strconv.Atoi(args[1])
	head, tail := "-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n"
	if err != nil || n < len(head)+len(tail) {
		ts.Fatalf("bigpem: bad size %q", args[1])
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	body := make([]byte, n-len(head)-len(tail))
	for i := range body {
		if i%65 == 64 || i == len(body)-1 {
			body[i] = '\n'
		} else {
			body[i] = alphabet[(i*13+i/97)%len(alphabet)]
		}
	}
	v := head + string(body) + tail
	b, err := json.Marshal(map[string]string{args[0]: v})
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), []byte(v), 0o600))
}

// samefile GOT WANT, or samefile -s GOT 'go-quoted bytes', compares a file
// the command received with what it should hold, reporting lengths and the
// first differing offset only.
func cmdSamefile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || (args[0] == "-s" && len(args) != 3) {
		ts.Fatalf("usage: samefile GOT WANT | samefile -s GOT QUOTED")
	}
	var want []byte
	if args[0] == "-s" {
		s, err := strconv.Unquote(`"` + args[2] + `"`)
		ts.Check(err)
		want, args = []byte(s), args[1:]
	} else {
		b, err := os.ReadFile(ts.MkAbs(args[1]))
		ts.Check(err)
		want = b
	}
	got, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		ts.Fatalf("samefile %s: got %d bytes, want %d bytes, first difference at byte %d", args[0], len(got), len(want), i)
	}
}

// filemode PATH OCTAL checks the permission bits of PATH (not following a
// symlink: a secret file must not be one).
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode PATH OCTAL")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	st, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	if st.Mode()&os.ModeSymlink != 0 {
		ts.Fatalf("filemode: %s is a symlink", args[0])
	}
	if got := uint64(st.Mode().Perm()); got != want {
		ts.Fatalf("filemode: %s has mode %04o, want %04o", args[0], got, want)
	}
}
