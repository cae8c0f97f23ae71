package sanitize

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPortable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"_", true},
		{"A", true},
		{"a_b9", true},
		{"_1PASS", true},
		{"1PASS", false},
		{"my-key", false},
		{"a.b", false},
		{"SECRET_KEY?", false},
		{"ÜBER", false},
		{"A B", false},
		{"A=B", false},
		{"A\x00", false},
	} {
		if got := Portable(tc.in); got != tc.want {
			t.Errorf("Portable(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SECRET_KEY?", "SECRET_KEY_"},
		{"my-key", "my_key"},
		{"a.b", "a_b"},
		{"1PASS", "_1PASS"},
		{"ÜBER", "_BER"},
		{"über", "_ber"},
		{"Mixed_Case", "Mixed_Case"},
		{"", "_"},
		{"9", "_9"},
		{"🔑KEY", "_KEY"},
		{"a b\tc", "a_b_c"},
		{"\xff\xfeX", "__X"},     // each invalid byte is one '_'
		{"\xe2\x82X", "__X"},     // truncated 3-byte sequence: two bad bytes
		{"\u00e9\xffé", "___"},   // valid, invalid, valid
		{"A=B\x00", "A_B_"},      // Clean itself never refuses; Apply does
		{"\ufffdZ", "_Z"},        // a real U+FFFD is one character
		{"0\xff", "_0_"},         // leading digit and a bad byte
		{"__init__", "__init__"}, // already portable: unchanged
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"sanitize", Sanitize, true},
		{"error", Error, true},
		{"skip", Skip, true},
		{"keep", Keep, true},
		{"KEEP", Keep, true},
		{" skip ", Skip, true},
		{"", 0, false},
		{"rename", 0, false},
	} {
		got, err := ParseMode(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseMode(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != strings.ToLower(strings.TrimSpace(tc.in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestApply(t *testing.T) {
	hostile := []string{"PORTABLE", "SECRET_KEY?", "my-key", "a.b", "1PASS", "ÜBER"}
	for _, tc := range []struct {
		name    string
		mode    Mode
		keys    []string
		want    []Decision
		wantErr error
		errHas  []string
	}{
		{
			name: "sanitize renames each hostile name",
			mode: Sanitize,
			keys: hostile,
			want: []Decision{
				{"PORTABLE", "PORTABLE", Kept, "portable name"},
				{"SECRET_KEY?", "SECRET_KEY_", Renamed, `renamed to "SECRET_KEY_": it contains '?'`},
				{"my-key", "my_key", Renamed, `renamed to "my_key": it contains '-'`},
				{"a.b", "a_b", Renamed, `renamed to "a_b": it contains '.'`},
				{"1PASS", "_1PASS", Renamed, `renamed to "_1PASS": it starts with a digit`},
				{"ÜBER", "_BER", Renamed, `renamed to "_BER": it contains 'Ü'`},
			},
		},
		{
			name: "skip drops non-portable names",
			mode: Skip,
			keys: []string{"OK", "my-key", "\xffX"},
			want: []Decision{
				{"OK", "OK", Kept, "portable name"},
				{"my-key", "", Skipped, "skipped, not a portable name: it contains '-'"},
				{"\xffX", "", Skipped, "skipped, not a portable name: it contains the invalid UTF-8 byte 0xff"},
			},
		},
		{
			name: "keep passes what execve can carry",
			mode: Keep,
			keys: []string{"OK", "my-key", "ÜBER"},
			want: []Decision{
				{"OK", "OK", Kept, "portable name"},
				{"my-key", "my-key", Kept, "kept although not portable: it contains '-'"},
				{"ÜBER", "ÜBER", Kept, "kept although not portable: it contains 'Ü'"},
			},
		},
		{
			name: "keep refuses an equals sign",
			mode: Keep,
			keys: []string{"OK", "A=B"},
			want: []Decision{
				{"OK", "OK", Kept, "portable name"},
				{"A=B", "", Rejected, "the name contains '=' and would set a different variable"},
			},
			wantErr: ErrInvalidName,
			errHas:  []string{`"A=B"`},
		},
		{
			name: "empty and NUL are refused in sanitize mode too",
			mode: Sanitize,
			keys: []string{"", "A\x00B"},
			want: []Decision{
				{"", "", Rejected, "the name is empty"},
				{"A\x00B", "", Rejected, "the name contains a NUL byte"},
			},
			wantErr: ErrInvalidName,
			errHas:  []string{`""`, `"A\x00B"`},
		},
		{
			name: "error mode names every bad key",
			mode: Error,
			keys: []string{"OK", "my-key", "a.b"},
			want: []Decision{
				{"OK", "OK", Kept, "portable name"},
				{"my-key", "", Rejected, "not a portable name: it contains '-'"},
				{"a.b", "", Rejected, "not a portable name: it contains '.'"},
			},
			wantErr: ErrInvalidName,
			errHas:  []string{`"my-key"`, `"a.b"`},
		},
		{
			name: "collision names both originals, sorted",
			mode: Sanitize,
			keys: []string{"a_b", "a.b"},
			want: []Decision{
				{"a_b", "a_b", Kept, "portable name"},
				{"a.b", "a_b", Renamed, `renamed to "a_b": it contains '.'`},
			},
			wantErr: ErrCollision,
			errHas:  []string{`"a.b" and "a_b" both become "a_b"`},
		},
		{
			name: "three-way collision between renamed keys",
			mode: Sanitize,
			keys: []string{"x-y", "x.y", "x y"},
			want: []Decision{
				{"x-y", "x_y", Renamed, `renamed to "x_y": it contains '-'`},
				{"x.y", "x_y", Renamed, `renamed to "x_y": it contains '.'`},
				{"x y", "x_y", Renamed, `renamed to "x_y": it contains ' '`},
			},
			wantErr: ErrCollision,
			errHas:  []string{`"x y" and "x-y" and "x.y" all become "x_y"`},
		},
		{
			name: "skip mode cannot collide with a skipped key",
			mode: Skip,
			keys: []string{"a_b", "a.b"},
			want: []Decision{
				{"a_b", "a_b", Kept, "portable name"},
				{"a.b", "", Skipped, "skipped, not a portable name: it contains '.'"},
			},
		},
		{
			name: "the same key twice is not a collision",
			mode: Sanitize,
			keys: []string{"a.b", "a.b"},
			want: []Decision{
				{"a.b", "a_b", Renamed, `renamed to "a_b": it contains '.'`},
				{"a.b", "a_b", Renamed, `renamed to "a_b": it contains '.'`},
			},
		},
		{
			name: "no keys",
			mode: Error,
			keys: nil,
			want: []Decision{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(tc.mode, tc.keys)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Apply error = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// The collision message must not depend on the order keys arrive in (Phase
// returns them in no particular order).
func TestCollisionMessageDeterministic(t *testing.T) {
	_, e1 := Apply(Sanitize, []string{"b.c", "a-b", "a.b", "b-c"})
	_, e2 := Apply(Sanitize, []string{"b-c", "a.b", "b.c", "a-b"})
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
		t.Fatalf("messages differ:\n%v\n%v", e1, e2)
	}
	want := `variable name collision: "a-b" and "a.b" both become "a_b"; "b-c" and "b.c" both become "b_c"; rename one of them at the source`
	if e1.Error() != want {
		t.Errorf("got  %s\nwant %s", e1, want)
	}
}

func TestCount(t *testing.T) {
	ds, _ := Apply(Sanitize, []string{"A", "b-c", "d.e", "F"})
	if got := []int{Count(ds, Kept), Count(ds, Renamed), Count(ds, Skipped)}; !cmp.Equal(got, []int{2, 2, 0}) {
		t.Errorf("counts kept/renamed/skipped = %v, want [2 2 0]", got)
	}
}

func TestApplyUnknownMode(t *testing.T) {
	if _, err := Apply(Mode(42), []string{"A"}); err == nil {
		t.Fatal("want an error for an unknown mode")
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "SECRET_KEY?", "my-key", "a.b", "1PASS", "ÜBER", "\xff", "A=B", "\x00", "9\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if !Portable(c) {
			t.Fatalf("Clean(%q) = %q is not portable", s, c)
		}
		if c2 := Clean(c); c2 != c {
			t.Fatalf("Clean not idempotent: %q -> %q -> %q", s, c, c2)
		}
		if Portable(s) && c != s {
			t.Fatalf("Clean changed the portable name %q to %q", s, c)
		}
	})
}

func FuzzApply(f *testing.F) {
	f.Add("SECRET_KEY?\nmy-key\na.b\n1PASS\nÜBER", 0)
	f.Add("a_b\na.b", 0)
	f.Add("A=B\n\n\x00", 3)
	f.Fuzz(func(t *testing.T, joined string, mode int) {
		keys := strings.Split(joined, "\n")
		m := Mode(((mode % 4) + 4) % 4)
		ds, err := Apply(m, keys)
		if len(ds) != len(keys) {
			t.Fatalf("%d decisions for %d keys", len(ds), len(keys))
		}
		names := map[string]string{}
		for i, d := range ds {
			if d.Original != keys[i] {
				t.Fatalf("decision %d is for %q, want %q", i, d.Original, keys[i])
			}
			if d.Reason == "" {
				t.Fatalf("decision %d has no reason", i)
			}
			switch d.Action {
			case Kept, Renamed:
				if d.Name == "" || strings.ContainsAny(d.Name, "=\x00") {
					t.Fatalf("passable decision with name %q", d.Name)
				}
				if m != Keep && !Portable(d.Name) {
					t.Fatalf("mode %v passes non-portable %q", m, d.Name)
				}
				if o, ok := names[d.Name]; ok && o != d.Original && err == nil {
					t.Fatalf("%q and %q both become %q without an error", o, d.Original, d.Name)
				}
				names[d.Name] = d.Original
			case Skipped, Rejected:
				if d.Name != "" {
					t.Fatalf("%v decision with name %q", d.Action, d.Name)
				}
			}
			if d.Action == Rejected && err == nil {
				t.Fatal("rejected decision without an error")
			}
		}
	})
}

func BenchmarkApply(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", []string{"PLAIN_KEY_", "my-key-", "a.b.", "ÜBER_"}[i%4], i)
	}
	for b.Loop() {
		if _, err := Apply(Sanitize, keys); err != nil {
			b.Fatal(err)
		}
	}
}
