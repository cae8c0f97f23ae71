// Command floor is the least a Go program can do to start a command with
// an environment: start the Go runtime, then execve. bench/run measures it
// next to phase-shim, so that what phase-shim adds on top of any Go
// wrapper can be told apart from what the Go runtime and execve of a
// multi-threaded process cost on the machine.
//
//	floor /bin/true
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(64)
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	os.Stderr.WriteString("floor: " + err.Error() + "\n")
	os.Exit(126)
}
