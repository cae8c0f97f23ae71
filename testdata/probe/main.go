// Command probe is the static program the chroot test runs through
// phase-shim in an otherwise empty root. It writes its environment to stdout
// as /proc/self/environ would show it (there is no /proc in that root) and
// exits with the status given as its first argument.
package main

import (
	"os"
	"strconv"
)

func main() {
	var b []byte
	for _, kv := range os.Environ() {
		b = append(b, kv...)
		b = append(b, 0)
	}
	if _, err := os.Stdout.Write(b); err != nil {
		os.Exit(2)
	}
	code := 0
	if len(os.Args) > 1 {
		code, _ = strconv.Atoi(os.Args[1])
	}
	os.Exit(code)
}
