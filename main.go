// Command phase-shim gathers secrets (from Phase and from files), checks and
// cleans their names, merges them into the environment and execve's the real
// command, which keeps the shim's PID and receives signals directly.
//
// This file holds the command line; main_run.go the pipeline, main_log.go
// the stderr logger, main_check.go the report of `check`.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Globals are the flags shared by run, check and export. They live on the
// root node rather than on the run command so that `phase-shim --env-file x
// check` and `phase-shim check --env-file x` both work (kong rejects flags of
// a default command when another command is named).
type Globals struct {
	// Phase. The token itself is deliberately not a flag: it would show in ps.
	TokenFile              string        `name:"token-file" env:"PHASE_SERVICE_TOKEN_FILE" placeholder:"PATH" group:"phase" help:"Read the Phase token from this file (Docker/Kubernetes secret mounts). The token is otherwise taken from PHASE_SERVICE_TOKEN, never from a flag. Phase is a source whenever a token is given."`
	Host                   string        `name:"host" env:"PHASE_HOST" default:"https://console.phase.dev" placeholder:"URL" group:"phase" help:"Phase origin, for self-hosted Phase."`
	AppID                  string        `name:"app-id" env:"PHASE_APP_ID" placeholder:"ID" group:"phase" help:"Application by id (default: appId of .phase.json)."`
	App                    string        `name:"app" env:"PHASE_APP" placeholder:"NAME" group:"phase" help:"Application by name (exact, case-insensitive; else a unique substring)."`
	Env                    string        `name:"env" env:"PHASE_ENV" placeholder:"NAME" group:"phase" help:"Environment: exact case-insensitive match, else a unique substring (prod matches Production). Default: defaultEnv of .phase.json, else Development."`
	Path                   string        `name:"path" env:"PHASE_PATH" default:"/" placeholder:"P" group:"phase" help:"Folder to read; --path \"\" reads every folder."`
	Tags                   []string      `name:"tags" env:"PHASE_TAGS" placeholder:"a,b" group:"phase" help:"Keep only secrets carrying any of these tags (case-insensitive, _ matches a space)."`
	References             string        `name:"references" env:"PHASE_SHIM_REFERENCES" enum:"strict,lenient,raw" default:"strict" placeholder:"MODE" group:"phase" help:"Phase $${KEY} references: strict (unresolvable is an error), lenient (keep the text, warn), raw (no resolution). One of: ${enum}."`
	GenerateLeases         bool          `name:"generate-leases" env:"PHASE_SHIM_GENERATE_LEASES" group:"phase" help:"Mint leases for dynamic secrets (off by default: a crash loop would mint one per restart)."`
	LeaseTTL               time.Duration `name:"lease-ttl" env:"PHASE_SHIM_LEASE_TTL" placeholder:"D" group:"phase" help:"Lifetime of a generated lease (server default when unset)."`
	CAFile                 string        `name:"ca-file" env:"PHASE_CA_FILE" placeholder:"PATH" group:"phase" help:"Extra PEM root certificates (private CA of a self-hosted Phase). SSL_CERT_FILE is honoured too."`
	VerifySSL              bool          `name:"verify-ssl" env:"PHASE_VERIFY_SSL" default:"true" negatable:"" group:"phase" help:"Verify the server's certificate. --verify-ssl=false is for development only."`
	AWSIAMServiceAccountID string        `name:"aws-iam-service-account-id" env:"PHASE_AWS_IAM_SERVICE_ACCOUNT_ID" placeholder:"UUID" group:"phase" help:"Log in to Phase with this task's, pod's or instance's AWS IAM role instead of a token: the id of the Phase service account whose AWS IAM identity trusts the role."`
	AWSIAMTTL              time.Duration `name:"aws-iam-ttl" env:"PHASE_AWS_IAM_TTL" default:"5m" placeholder:"D" group:"phase" help:"Lifetime of the Phase token an AWS IAM login mints (whole seconds; at most the identity's maximum)."`
	AWSSTSEndpoint         string        `name:"aws-sts-endpoint" env:"PHASE_AWS_STS_ENDPOINT" default:"https://sts.amazonaws.com" placeholder:"URL" group:"phase" help:"STS endpoint the AWS IAM login is signed for; must equal the one configured on the Phase identity. \"regional\" means https://sts.$$AWS_REGION.amazonaws.com."`
	CacheDir               string        `name:"cache-dir" env:"PHASE_SHIM_CACHE_DIR" placeholder:"DIR" group:"phase" help:"Keep an encrypted last-known-good copy of the secrets here (off by default). Used only when Phase is unreachable and the copy is younger than --cache-max-age; readable only with the token."`
	CacheMaxAge            time.Duration `name:"cache-max-age" env:"PHASE_SHIM_CACHE_MAX_AGE" default:"24h" placeholder:"D" group:"phase" help:"Oldest cached copy --cache-dir may use."`
	Timeout                time.Duration `name:"timeout" env:"PHASE_SHIM_TIMEOUT" default:"30s" placeholder:"D" group:"phase" help:"Deadline for gathering all secrets, retries included."`

	// Files. PHASE_SHIM_ENV_FILES is read by hand: kong would split the flag
	// on commas too, and a path may hold one.
	EnvFiles []string `name:"env-file" sep:"none" placeholder:"PATH" group:"files" help:"Read secrets from a file (repeatable; env: PHASE_SHIM_ENV_FILES, comma-separated). A flat JSON object of strings when the file starts with {, else dotenv (docker compose dialect). Later files override earlier ones and Phase."`

	// Secret files (deliver/).
	Files       []string `name:"file" env:"PHASE_SHIM_FILES" sep:"," placeholder:"KEY" group:"files" help:"Deliver this secret as a file instead of a variable: its value goes to DIR/KEY (0400, in a 0700 directory) and KEY_FILE=DIR/KEY replaces KEY. Repeatable; globs like *_PEM; matched after --invalid-keys renaming. A pattern matching no secret is an error. For values the environment cannot carry (NUL bytes, over 128 KiB)."`
	FilesDir    string   `name:"files-dir" env:"PHASE_SHIM_FILES_DIR" placeholder:"DIR" group:"files" help:"Directory for --file (default: /run/secrets/phase-shim when /run/secrets is writable, else a new private directory under $$TMPDIR). Must be a real directory owned by this user with mode 0700, or not exist yet. Use a tmpfs: the files outlive phase-shim."`
	WriteFile   string   `name:"write-file" env:"PHASE_SHIM_WRITE_FILE" placeholder:"PATH" group:"files" help:"Also write every secret to this file (0400, replaced atomically), for apps that read a config file; the same set export prints."`
	WriteFormat string   `name:"write-format" env:"PHASE_SHIM_WRITE_FORMAT" placeholder:"F" group:"files" help:"Format of --write-file: dotenv, json or shell (default: json for *.json, shell for *.sh, else dotenv). dotenv and json read back exactly through --env-file."`

	// Names.
	InvalidKeys string `name:"invalid-keys" env:"PHASE_SHIM_INVALID_KEYS" enum:"sanitize,error,skip,keep" default:"sanitize" placeholder:"MODE" group:"names" help:"Keys that are not portable names ([A-Za-z_][A-Za-z0-9_]*): sanitize (SECRET_KEY? becomes SECRET_KEY_, reported), error (exit 65), skip (drop, reported), keep (pass any name execve can carry)."`

	// Environment.
	PreserveEnv bool `name:"preserve-env" env:"PHASE_SHIM_PRESERVE_ENV" group:"environment" help:"A variable already set in the environment keeps its value; the secret is dropped and reported."`
	KeepToken   bool `name:"keep-token" env:"PHASE_SHIM_KEEP_TOKEN" group:"environment" help:"Leave PHASE_SERVICE_TOKEN and PHASE_SERVICE_TOKEN_FILE in the command's environment (removed by default)."`

	// Init mode (supervise/).
	Init        InitMode      `name:"init" env:"PHASE_SHIM_INIT" group:"init" placeholder:"auto" help:"Run the command as a supervised child instead of exec'ing it: forward signals, reap zombies, exit with its status (128+n when killed by signal n). For apps that ignore SIGTERM as PID 1. --init=auto does so only when phase-shim is PID 1."`
	KillTimeout time.Duration `name:"kill-timeout" env:"PHASE_SHIM_KILL_TIMEOUT" default:"10s" placeholder:"D" group:"init" help:"With --init: SIGKILL the command's process group when it outlives a forwarded SIGTERM or SIGINT by this long (0: never)."`

	// Output.
	Quiet     bool   `name:"quiet" short:"q" xor:"verbosity" group:"output" help:"Print errors only."`
	Verbose   bool   `name:"verbose" short:"v" xor:"verbosity" group:"output" help:"Print debug lines (requests, sources; never values)."`
	Log       string `name:"log" env:"PHASE_SHIM_LOG" enum:"quiet,info,debug" default:"info" placeholder:"LEVEL" group:"output" help:"Verbosity when neither -q nor -v is given: ${enum}."`
	LogFormat string `name:"log-format" env:"PHASE_SHIM_LOG_FORMAT" enum:"text,json" default:"text" placeholder:"F" group:"output" help:"stderr format: text, or json (one object per line, for CloudWatch/Loki)."`
}

// RunCmd is the default command. passthrough:"partial" makes kong stop at the
// command's first word, so the wrapped command's own flags reach it untouched.
type RunCmd struct {
	Command []string `arg:"" optional:"" name:"command" passthrough:"partial" help:"The command to run, and its arguments."`
}

// CheckCmd does everything but exec. The command is optional: given, its
// lookup and the argv size are checked as well.
type CheckCmd struct {
	Output  string   `name:"output" short:"o" enum:"table,json" default:"table" placeholder:"F" help:"Report format: table or json."`
	Command []string `arg:"" optional:"" name:"command" passthrough:"partial" help:"Optional: also check that this command would be found and fits the kernel limits."`
}

// ExportCmd prints the merged secrets for another consumer.
type ExportCmd struct {
	Format string `name:"format" short:"f" env:"PHASE_SHIM_EXPORT_FORMAT" enum:"dotenv,json,shell,docker" default:"dotenv" placeholder:"F" help:"dotenv, json (both read back by --env-file), shell (for sh/bash: . <(phase-shim export --format shell)) or docker (docker run --env-file; refuses values with a newline)."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// CLI is the whole command line.
type CLI struct {
	Globals

	Run     RunCmd     `cmd:"" default:"withargs" help:"Gather secrets, check them, and exec COMMAND with them (the default: phase-shim [flags] -- COMMAND ARG...)."`
	Check   CheckCmd   `cmd:"" help:"Do everything except exec and print a report: key, source, action, value size. Never prints a value. Exits non-zero exactly when run would fail."`
	Export  ExportCmd  `cmd:"" help:"Print the merged secrets to stdout in a format another tool reads back."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

const description = `phase-shim [flags] [--] COMMAND [ARG...]

Fetch secrets from Phase (end-to-end encrypted) and/or files, check their
names, and exec COMMAND with them in its environment: same PID, signals and
exit status go straight to COMMAND. No shell, nothing written to disk.

  PHASE_SERVICE_TOKEN=pss_service:v2:... phase-shim --app-id ID --env production -- node index.js
  phase-shim --env-file .env -- ./server --port 8080
  phase-shim check --env-file .env          # what would be injected (never values)

Every flag also reads the environment variable shown next to it; a flag wins.
Exit codes: 64 usage, 65 bad data (names, NUL, sizes, files, references),
69 Phase unavailable, 76 protocol/tampering, 77 token rejected, 78 configuration
(e.g. no source), 126 not executable, 127 not found; COMMAND never starts then.`

// tokenVars are the variables that may carry the token; they are removed
// from the command's environment unless --keep-token.
var tokenVars = []string{"PHASE_SERVICE_TOKEN", "PHASE_SERVICE_TOKEN_FILE"}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks kong's own errors (unknown flag, bad enum value, ...).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs phase-shim with args (without the program name) and returns the
// exit status. On success `run` does not return: the process is replaced.
func Main(args []string, stdout, stderr io.Writer) int {
	cli, command, helpExit, err := parseCommandLine(args, stdout, stderr)
	if helpExit >= 0 {
		return helpExit
	}
	if err != nil {
		if errors.Is(err, errInternal) {
			fmt.Fprintf(stderr, "phase-shim: internal error: %v\n", err)
			return 70
		}
		fmt.Fprintf(stderr, "phase-shim: error: %v\n", err)
		fmt.Fprintln(stderr, "phase-shim: run 'phase-shim --help' for usage")
		return 64
	}

	log := newLogger(stderr, &cli.Globals)
	var code int
	switch command {
	case "version":
		code = cmdVersion(stdout)
	case "check", "check <command>":
		code = cmdCheck(cli, log, stdout)
	case "export":
		code = cmdExport(cli, log, stdout)
	default:
		code = cmdRun(cli, log)
	}
	return code
}

// errInternal marks a kong model that does not build: a broken struct tag,
// a programming error every test catches.
var errInternal = errors.New("command-line model")

// parseCommandLine parses args into a CLI. helpExit is >= 0 when --help (or
// similar) was handled and Main should return it; err is a usage error.
func parseCommandLine(args []string, stdout, stderr io.Writer) (cli *CLI, command string, helpExit int, err error) {
	cli = &CLI{}
	helpExit = -1
	parser, err := kong.New(cli,
		kong.Name("phase-shim"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		// --help must not os.Exit from inside the parser: Main returns codes.
		kong.Exit(func(code int) { helpExit = code; panic(helpExitPanic{}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
		kong.ExplicitGroups([]kong.Group{
			{Key: "phase", Title: "Phase (a source when PHASE_SERVICE_TOKEN or --token-file is given):"},
			{Key: "files", Title: "Files:"},
			{Key: "names", Title: "Names:"},
			{Key: "environment", Title: "Environment:"},
			{Key: "init", Title: "Init mode (instead of exec):"},
			{Key: "output", Title: "Output:"},
		}),
		kong.Vars{"version": version},
		// kong's own string mapper round-trips values through JSON, which
		// turns invalid UTF-8 into U+FFFD: a wrapped command's argument or a
		// file name in another encoding would silently change.
		kong.KindMapper(reflect.String, kong.MapperFunc(rawString)),
	)
	if err != nil {
		return nil, "", -1, fmt.Errorf("%w: %w", errInternal, err)
	}
	ignoreEmptyEnv(parser)
	kctx, err := parseArgs(parser, args)
	if helpExit >= 0 || err != nil {
		return cli, "", helpExit, err
	}
	return cli, kctx.Command(), -1, nil
}

// rawString stores a string argument byte for byte.
func rawString(ctx *kong.DecodeContext, target reflect.Value) error {
	t, err := ctx.Scan.PopValue("string")
	if err != nil {
		return err
	}
	v, ok := t.Value.(string)
	if !ok {
		return fmt.Errorf("expected a string, got %v", t.Value)
	}
	target.SetString(v)
	return nil
}

type helpExitPanic struct{}

// ignoreEmptyEnv makes an empty variable count as unset: `FOO=` is how
// compose files and task definitions often leave a setting blank, and kong
// would otherwise parse "" (an invalid enum, a zero timeout). PHASE_PATH is
// the exception: empty there means every folder, as --path "" does.
func ignoreEmptyEnv(parser *kong.Kong) {
	var flags []*kong.Flag
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		flags = append(flags, n.Flags...)
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
	for _, f := range flags {
		kept := f.Tag.Envs[:0]
		for _, name := range f.Tag.Envs {
			if v, ok := os.LookupEnv(name); ok && v == "" && name != "PHASE_PATH" {
				continue
			}
			kept = append(kept, name)
		}
		f.Tag.Envs = kept
	}
}

// parseArgs runs kong, turning its exit-on-help into a return value.
func parseArgs(parser *kong.Kong, args []string) (kctx *kong.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(helpExitPanic); !ok {
				panic(r)
			}
			kctx, err = nil, nil
		}
	}()
	return parser.Parse(routeDoubleDash(parser, args))
}

// routeDoubleDash makes `phase-shim [flags] -- WORDS` always mean `run`.
// Without it kong would pop the `--` at the root and then read a wrapped
// command called `check` or `version` as phase-shim's own subcommand. If
// only flags come before the first `--`, `run` is inserted right before it;
// kong then hands `--` on to the passthrough argument (stripped in
// commandArgs).
func routeDoubleDash(parser *kong.Kong, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range parser.Model.Flags {
		v := !f.IsBool() && !f.IsCounter()
		takesValue["--"+f.Name] = v
		if f.Short != 0 {
			takesValue["-"+string(f.Short)] = v
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			out := slices.Clone(args[:i])
			out = append(out, "run")
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			if strings.Contains(a, "=") {
				continue
			}
			if takesValue[a] {
				i++ // skip the flag's value, which may look like anything
			}
		default:
			return args // a command name or the wrapped command: kong decides
		}
	}
	return args
}

// commandArgs strips exactly one leading `--` that kong's passthrough keeps.
func commandArgs(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
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
