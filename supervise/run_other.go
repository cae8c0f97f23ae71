//go:build !linux

package supervise

// Run is Linux-only: it relies on prctl(PR_SET_CHILD_SUBREAPER) and Linux
// terminal semantics. Elsewhere the shim keeps to plain exec.
func Run(path string, argv, envp []string, o Options) (exitCode int, err error) {
	return 0, ErrUnsupported
}
