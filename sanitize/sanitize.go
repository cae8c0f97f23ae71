// Package sanitize decides what happens to secret names that a POSIX shell or
// a portable program could not use as environment variable names. It looks at
// names only: no value ever passes through this package, so nothing here can
// leak one.
package sanitize

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Both errors mean "bad data" to the caller (exit 65). Messages quote the
// original names with %q so that control characters and invalid UTF-8 in a
// name cannot garble a terminal or a log line.
var (
	ErrInvalidName = errors.New("invalid variable name")
	ErrCollision   = errors.New("variable name collision")
)

// Mode is the policy for names that are not portable.
type Mode int

const (
	Sanitize Mode = iota // rename with Clean and report it
	Error                // refuse to start
	Skip                 // drop the variable and report it
	Keep                 // pass the name unchanged if execve can carry it
)

var modeNames = [...]string{Sanitize: "sanitize", Error: "error", Skip: "skip", Keep: "keep"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode accepts the spellings of --invalid-keys. Case is ignored because
// the value often comes from an environment variable typed by hand.
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown invalid-keys mode %q (want sanitize, error, skip or keep)", s)
}

// Action is what happened to one name.
type Action int

const (
	Kept     Action = iota // passed under its original name
	Renamed                // passed under Decision.Name
	Skipped                // not passed at all
	Rejected               // the name makes the whole run fail (see the error Apply returns)
)

var actionNames = [...]string{Kept: "kept", Renamed: "renamed", Skipped: "skipped", Rejected: "rejected"}

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision records the fate of one input name. Name is the variable name
// the command will see; it is empty when Action is Skipped or Rejected, so a
// caller that forgets to look at Action fails on an empty name instead of
// passing something by accident.
type Decision struct {
	Original string
	Name     string
	Action   Action
	Reason   string
}

// Portable reports whether name matches [A-Za-z_][A-Za-z0-9_]*, the set every
// shell accepts in `export NAME=…` and POSIX recommends for the environment.
func Portable(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Clean turns any string into a portable name: every character outside
// [A-Za-z0-9_] becomes one '_' (per Unicode character, so "ÜBER" gives
// "_BER", not "__BER"), each byte of invalid UTF-8 becomes one '_', and a
// leading digit gets a '_' in front. The empty string becomes "_" so that the
// result is always Portable; Apply never gets that far with an empty name.
func Clean(name string) string {
	if Portable(name) {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 1)
	if name == "" || ('0' <= name[0] && name[0] <= '9') {
		b.WriteByte('_')
	}
	// Ranging over a string yields utf8.RuneError with width 1 for every
	// invalid byte, which is exactly the "one '_' per bad byte" rule.
	for _, r := range name {
		if r < utf8.RuneSelf && portableByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func portableByte(c byte) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

// unpassable explains why execve could never carry name, or returns "".
func unpassable(name string) string {
	switch {
	case name == "":
		return "the name is empty"
	case strings.IndexByte(name, 0) >= 0:
		return "the name contains a NUL byte"
	case strings.IndexByte(name, '=') >= 0:
		// "A=B" with value v would reach the command as A with value "B=v".
		return "the name contains '=' and would set a different variable"
	}
	return ""
}

// why names the first character that makes name non-portable, for reports.
func why(name string) string {
	if name != "" && '0' <= name[0] && name[0] <= '9' {
		return "it starts with a digit"
	}
	for i, r := range name {
		if r < utf8.RuneSelf && portableByte(byte(r)) {
			continue
		}
		if r == utf8.RuneError {
			if _, w := utf8.DecodeRuneInString(name[i:]); w == 1 {
				return fmt.Sprintf("it contains the invalid UTF-8 byte 0x%02x", name[i])
			}
		}
		return fmt.Sprintf("it contains %q", r)
	}
	return "it is not portable"
}

// Apply decides the fate of every key under mode and returns one Decision per
// key, in input order. Keys are expected to be unique (the output of
// layering); a key repeated verbatim gets the same decision twice and is not
// a collision.
//
// On error the decisions are still returned, complete, so that a report can
// show every name next to the failure. The error wraps ErrInvalidName (a name
// execve cannot carry in any mode, or a non-portable name in Error mode) or
// ErrCollision (two different keys that would become one variable, in any
// mode); invalid names are reported first because they make collisions moot.
func Apply(mode Mode, keys []string) ([]Decision, error) {
	if mode < Sanitize || mode > Keep {
		return nil, fmt.Errorf("unknown invalid-keys mode %d", int(mode))
	}
	ds := make([]Decision, len(keys))
	var invalid []string
	for i, k := range keys {
		d := Decision{Original: k}
		if r := unpassable(k); r != "" {
			d.Action, d.Reason = Rejected, r
			invalid = append(invalid, fmt.Sprintf("%q (%s)", k, r))
			ds[i] = d
			continue
		}
		if Portable(k) {
			d.Name, d.Action, d.Reason = k, Kept, "portable name"
			ds[i] = d
			continue
		}
		w := why(k)
		switch mode {
		case Sanitize:
			d.Name, d.Action = Clean(k), Renamed
			d.Reason = fmt.Sprintf("renamed to %q: %s", d.Name, w)
		case Error:
			d.Action, d.Reason = Rejected, "not a portable name: "+w
			invalid = append(invalid, fmt.Sprintf("%q (%s)", k, w))
		case Skip:
			d.Action, d.Reason = Skipped, "skipped, not a portable name: "+w
		case Keep:
			d.Name, d.Action = k, Kept
			d.Reason = "kept although not portable: " + w
		}
		ds[i] = d
	}
	if len(invalid) > 0 {
		return ds, fmt.Errorf("%w: %s", ErrInvalidName, strings.Join(invalid, ", "))
	}
	// Kept names are distinct originals, so only a rename can collide;
	// without one (the usual start) the map below is not worth building.
	if Count(ds, Renamed) == 0 {
		return ds, nil
	}
	if err := collisions(ds); err != nil {
		return ds, err
	}
	return ds, nil
}

// collisions finds final names reached from more than one distinct original.
// Groups and originals are sorted so the message is the same on every run,
// whatever order the source delivered the keys in.
func collisions(ds []Decision) error {
	by := map[string][]string{}
	for _, d := range ds {
		if d.Action != Kept && d.Action != Renamed {
			continue
		}
		o := by[d.Name]
		dup := false
		for _, x := range o {
			if x == d.Original {
				dup = true
			}
		}
		if !dup {
			by[d.Name] = append(o, d.Original)
		}
	}
	var groups []string
	for name, origs := range by {
		if len(origs) < 2 {
			continue
		}
		sort.Strings(origs)
		q := make([]string, len(origs))
		for i, o := range origs {
			q[i] = fmt.Sprintf("%q", o)
		}
		verb := "both become"
		if len(q) > 2 {
			verb = "all become"
		}
		groups = append(groups, fmt.Sprintf("%s %s %q", strings.Join(q, " and "), verb, name))
	}
	if len(groups) == 0 {
		return nil
	}
	sort.Strings(groups)
	return fmt.Errorf("%w: %s; rename one of them at the source", ErrCollision, strings.Join(groups, "; "))
}

// Count returns how many decisions took action a, for summaries such as
// "2 renamed".
func Count(ds []Decision, a Action) int {
	n := 0
	for _, d := range ds {
		if d.Action == a {
			n++
		}
	}
	return n
}
