// Command phase-shim gathers secrets (from Phase and from files), checks and
// cleans their names, merges them into the environment and execve's the real
// command, which keeps the shim's PID and receives signals directly.
//
// This file holds the options and the dispatch; main_flags.go parses the
// command line, main_run.go runs the pipeline, main_log.go writes stderr,
// main_check.go the report of `check`, main_phase.go and main_init.go wire
// the Phase client and init mode.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Globals are the flags every command accepts (main_flags.go declares them:
// names, variables, defaults, help). They may come before or after the
// command name: `phase-shim --env-file x check` = `phase-shim check --env-file x`.
type Globals struct {
	// Phase. The token itself is deliberately not a flag: it would show in ps.
	TokenFile, Host, AppID, App, Env, Path string
	Tags                                   []string
	References                             string
	GenerateLeases                         bool
	LeaseTTL                               time.Duration
	CAFile                                 string
	VerifySSL                              bool
	AWSIAMServiceAccountID                 string
	AWSIAMTTL                              time.Duration
	AWSSTSEndpoint                         string
	CacheDir                               string
	CacheMaxAge                            time.Duration
	CacheFallbackAfter                     time.Duration
	Timeout                                time.Duration

	// Files and secret files.
	EnvFiles               []string
	Files                  []string
	FilesDir               string
	WriteFile, WriteFormat string

	// Names and environment.
	InvalidKeys            string
	PreserveEnv, KeepToken bool

	// Init mode (supervise/).
	Init        InitMode
	KillTimeout time.Duration

	// Output.
	Quiet, Verbose bool
	Log, LogFormat string
}

// RunCmd is the default command: everything from the first word that is not
// a flag (or after `--`) is the command, passed on untouched.
type RunCmd struct {
	Command []string
}

// CheckCmd does everything but exec. The command is optional: given, its
// lookup and the argv size are checked as well.
type CheckCmd struct {
	Output  string
	Command []string
}

// ExportCmd prints the merged secrets for another consumer.
type ExportCmd struct {
	Format string
}

// CLI is the whole command line.
type CLI struct {
	Globals
	Run    RunCmd
	Check  CheckCmd
	Export ExportCmd
}

// tokenVars are the variables that may carry the token; they are removed
// from the command's environment unless --keep-token.
var tokenVars = []string{"PHASE_SERVICE_TOKEN", "PHASE_SERVICE_TOKEN_FILE"}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks command-line errors (unknown flag, bad value, ...): 64.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs phase-shim with args (without the program name) and returns the
// exit status. On success `run` does not return: the process is replaced.
func Main(args []string, stdout, stderr io.Writer) int {
	cli, command, err := parseCommandLine(args, os.LookupEnv)
	if err != nil {
		// Text whatever --log-format says: the command line did not parse.
		// The logger still prefixes every line of a message that holds a
		// newline (an argument can).
		log := &logger{w: stderr, level: levelInfo}
		log.Error(err.Error())
		log.Info("run 'phase-shim --help' for usage")
		return 64
	}
	if command == "help" {
		writeHelp(stdout)
		return 0
	}

	log := newLogger(stderr, &cli.Globals)
	var code int
	switch command {
	case "version":
		code = cmdVersion(stdout)
	case "check":
		code = cmdCheck(cli, log, stdout)
	case "export":
		code = cmdExport(cli, log, stdout)
	default:
		code = cmdRun(cli, log)
	}
	return code
}

func cmdVersion(stdout io.Writer) int {
	fmt.Fprintf(stdout, "phase-shim %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// fail logs err and returns its exit code.
func fail(log *logger, err error) int {
	log.Error(err.Error())
	return exitCode(err)
}

// errNoCommand is a usage error: `phase-shim --` with nothing after it.
var errNoCommand = errors.New("no command given: phase-shim [flags] -- COMMAND [ARG...]")
