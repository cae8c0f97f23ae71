package fetch

import (
	"fmt"
	"strconv"
)

// Safety nets for accidental printing. A Secret, a PhaseOptions (it holds
// the token) or a PhaseResult (it holds Secrets) that reaches fmt through
// %v, %+v, %#v or %s — a debug line, a test failure, a panic value — shows
// names, sources and sizes, never a value or the token. Code that needs a
// value reads the field.

// Format prints a Secret as {KEY <N bytes> SOURCE}; %#v as a Go literal
// with the value replaced by its length.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprintf(f, "fetch.Secret{Key:%s, Value:<%d bytes>, Source:%s}", strconv.Quote(s.Key), len(s.Value), strconv.Quote(s.Source))
		return
	}
	if verb == 'v' && f.Flag('+') {
		fmt.Fprintf(f, "{Key:%s Value:<%d bytes> Source:%s}", s.Key, len(s.Value), s.Source)
		return
	}
	fmt.Fprintf(f, "{%s <%d bytes> %s}", s.Key, len(s.Value), s.Source)
}

// plainOptions has PhaseOptions' fields without its methods, so Format can
// print the redacted copy with fmt's own struct formatting.
type plainOptions PhaseOptions

// Format prints PhaseOptions with the token replaced by its type and
// length; every other field as fmt would.
func (o PhaseOptions) Format(f fmt.State, verb rune) {
	c := plainOptions(o)
	if c.Token != "" {
		c.Token = fmt.Sprintf("<redacted token, %d bytes>", len(o.Token))
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), c)
}
