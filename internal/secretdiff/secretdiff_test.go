package secretdiff

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct{ got, want, msg string }{
		{"same", "same", ""},
		{"", "", ""},
		{"abcX", "abcY", "got 4 bytes, want 4 bytes, first difference at byte 3"},
		{"abc", "abcd", "got 3 bytes, want 4 bytes, first difference at byte 3"},
		{"s3cr3t", "", "got 6 bytes, want 0 bytes, first difference at byte 0"},
	} {
		msg := Describe(c.got, c.want)
		if msg != c.msg {
			t.Errorf("case %d: got message %q, want %q", len(c.msg), msg, c.msg)
		}
		if c.got != "" && strings.Contains(msg, c.got) {
			t.Errorf("the message quotes a value")
		}
	}
}
