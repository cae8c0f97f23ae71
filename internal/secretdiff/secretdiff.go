// Package secretdiff describes how two secret values differ without showing
// either of them, for test failure messages: a secret value must never reach
// a test log. Only tests import it; it is not linked into phase-shim.
package secretdiff

import "fmt"

// Describe returns "" when got and want are equal, else their lengths and the
// offset of the first differing byte.
func Describe(got, want string) string {
	if got == want {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d bytes, first difference at byte %d", len(got), len(want), i)
}
