package main

// The command line is parsed by hand rather than with a flag library: the
// library we used (kong) cost 2.2 MB by itself and, through reflect's
// MethodByName, switched off the linker's removal of unused methods for the
// whole program, taking the static binary from 7.2 MB to 8.9 MB, over the
// 7 MiB budget. The grammar is small enough to state here:
//
//	phase-shim [FLAG...] [COMMAND] [FLAG...] [--] [WORD...]
//
// COMMAND is run (the default), check, export, version or help. Flags may
// come before and after it, as --name VALUE, --name=VALUE, --no-name (a
// boolean), -x VALUE, -xVALUE, or short booleans clustered. The first `--`
// ends the flags and is dropped; the first word that is neither a flag nor a
// command name ends them too and is kept: from there on every word belongs
// to the wrapped command, whatever it looks like.

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

type flagKind int

const (
	kindString flagKind = iota
	kindBool
	kindDuration
	kindEnum
	kindList // repeatable; a flag adds one value, or several when split is set
	kindInit // bool-like with an optional =auto
)

// flagSpec describes one flag: how it is spelled, its variable, its default
// and where its value goes.
type flagSpec struct {
	name        string // long name, without --
	short       byte   // 0: none
	env         string // "" : none
	kind        flagKind
	enum        []string
	def         string // default, as text; applied before variables and flags
	placeholder string
	group       string
	help        string
	command     string // "" : every command; else only this one
	split       bool   // kindList: split a flag value on commas too (a variable always is)
	emptyMeans  bool   // the variable set to "" is a value (PHASE_PATH), not "unset"

	str  *string
	b    *bool
	dur  *time.Duration
	list *[]string
	init *InitMode
}

// groups are the help sections, in order.
var groups = []struct{ key, title string }{
	{"phase", "Phase (a source when PHASE_SERVICE_TOKEN, --token-file or --aws-iam-service-account-id is given)"},
	{"files", "Files"},
	{"names", "Names"},
	{"environment", "Environment"},
	{"init", "Init mode (instead of exec)"},
	{"output", "Output"},
	{"check", "Flags of check"},
	{"export", "Flags of export"},
}

// flagTable binds every flag to a field of c.
func flagTable(c *CLI) []*flagSpec {
	g := &c.Globals
	return []*flagSpec{
		// Phase.
		{name: "token-file", env: "PHASE_SERVICE_TOKEN_FILE", placeholder: "PATH", group: "phase", str: &g.TokenFile,
			help: "Read the Phase token from this file (Docker/Kubernetes secret mounts; a trailing newline is ignored). Otherwise the token comes from PHASE_SERVICE_TOKEN, never from a flag: it would show in ps."},
		{name: "host", env: "PHASE_HOST", def: "https://console.phase.dev", placeholder: "URL", group: "phase", str: &g.Host,
			help: "Phase origin, for a self-hosted Phase."},
		{name: "app-id", env: "PHASE_APP_ID", placeholder: "ID", group: "phase", str: &g.AppID,
			help: "Application by id (default: appId of .phase.json)."},
		{name: "app", env: "PHASE_APP", placeholder: "NAME", group: "phase", str: &g.App,
			help: "Application by name (exact, case-insensitive; else a unique substring)."},
		{name: "env", env: "PHASE_ENV", placeholder: "NAME", group: "phase", str: &g.Env,
			help: "Environment: exact case-insensitive match, else a unique substring (prod matches Production). Default: defaultEnv of .phase.json, else Development."},
		{name: "path", env: "PHASE_PATH", def: "/", placeholder: "P", group: "phase", str: &g.Path, emptyMeans: true,
			help: `Folder to read; --path "" reads every folder.`},
		{name: "tags", env: "PHASE_TAGS", kind: kindList, split: true, placeholder: "a,b", group: "phase", list: &g.Tags,
			help: "Keep only secrets carrying any of these tags (each compared whole, case-insensitive, _ matches a space)."},
		{name: "references", env: "PHASE_SHIM_REFERENCES", kind: kindEnum, enum: []string{"strict", "lenient", "raw"}, def: "strict", placeholder: "MODE", group: "phase", str: &g.References,
			help: "Phase ${KEY} references: strict (unresolvable is an error), lenient (keep the text, warn), raw (no resolution)."},
		{name: "generate-leases", env: "PHASE_SHIM_GENERATE_LEASES", kind: kindBool, group: "phase", b: &g.GenerateLeases,
			help: "Mint leases for dynamic secrets (off by default: a crash loop would mint one per restart)."},
		{name: "lease-ttl", env: "PHASE_SHIM_LEASE_TTL", kind: kindDuration, placeholder: "D", group: "phase", dur: &g.LeaseTTL,
			help: "Lifetime of a generated lease (server default when unset)."},
		{name: "ca-file", env: "PHASE_CA_FILE", placeholder: "PATH", group: "phase", str: &g.CAFile,
			help: "Extra PEM root certificates (private CA of a self-hosted Phase). SSL_CERT_FILE is honoured too, and fallback roots are built in."},
		{name: "verify-ssl", env: "PHASE_VERIFY_SSL", kind: kindBool, def: "true", group: "phase", b: &g.VerifySSL,
			help: "Verify the server's certificate. --verify-ssl=false is for development only."},
		{name: "aws-iam-service-account-id", env: "PHASE_AWS_IAM_SERVICE_ACCOUNT_ID", placeholder: "UUID", group: "phase", str: &g.AWSIAMServiceAccountID,
			help: "Log in to Phase with this task's, pod's or instance's AWS IAM role instead of a token: the id of the Phase service account whose AWS IAM identity trusts the role."},
		{name: "aws-iam-ttl", env: "PHASE_AWS_IAM_TTL", kind: kindDuration, def: "5m", placeholder: "D", group: "phase", dur: &g.AWSIAMTTL,
			help: "Lifetime of the Phase token an AWS IAM login mints (whole seconds; at most the identity's maximum)."},
		{name: "aws-sts-endpoint", env: "PHASE_AWS_STS_ENDPOINT", def: "https://sts.amazonaws.com", placeholder: "URL", group: "phase", str: &g.AWSSTSEndpoint,
			help: `STS endpoint the AWS IAM login is signed for; must equal the one configured on the Phase identity. "regional" means https://sts.$AWS_REGION.amazonaws.com.`},
		{name: "cache-dir", env: "PHASE_SHIM_CACHE_DIR", placeholder: "DIR", group: "phase", str: &g.CacheDir,
			help: "Keep an encrypted last-known-good copy of the secrets here (off by default). Used only when Phase is unreachable and the copy is younger than --cache-max-age; readable only with the token. Not used with --generate-leases (leased credentials must not outlive their lease)."},
		{name: "cache-max-age", env: "PHASE_SHIM_CACHE_MAX_AGE", kind: kindDuration, def: "24h", placeholder: "D", group: "phase", dur: &g.CacheMaxAge,
			help: "Oldest cached copy --cache-dir may use."},
		{name: "cache-fallback-after", env: "PHASE_SHIM_CACHE_FALLBACK_AFTER", kind: kindDuration, def: "5s", placeholder: "D", group: "phase", dur: &g.CacheFallbackAfter,
			help: "With a cached copy younger than --cache-max-age: wait at most this long (and never past --timeout) for Phase, then start from the copy. Without a usable copy the whole --timeout applies. 0: wait the whole --timeout."},
		{name: "timeout", env: "PHASE_SHIM_TIMEOUT", kind: kindDuration, def: "30s", placeholder: "D", group: "phase", dur: &g.Timeout,
			help: "Deadline for gathering all secrets, retries included."},

		// Files. A path may hold a comma, so --env-file is never split;
		// PHASE_SHIM_ENV_FILES is (there is no other way to list several).
		{name: "env-file", env: "PHASE_SHIM_ENV_FILES", kind: kindList, placeholder: "PATH", group: "files", list: &g.EnvFiles,
			help: "Read secrets from a file (repeatable; the variable is comma-separated). A flat JSON object of strings when the file starts with {, else dotenv (docker compose dialect, no $ interpolation). Later files override earlier ones and Phase."},
		{name: "file", env: "PHASE_SHIM_FILES", kind: kindList, split: true, placeholder: "KEY", group: "files", list: &g.Files,
			help: "Deliver this secret as a file instead of a variable: its value goes to DIR/KEY (0400, in a 0700 directory) and KEY_FILE=DIR/KEY replaces KEY. Repeatable; globs like *_PEM; matched after renaming. A pattern matching no secret is an error. For values the environment cannot carry (NUL bytes, over 128 KiB)."},
		{name: "files-dir", env: "PHASE_SHIM_FILES_DIR", placeholder: "DIR", group: "files", str: &g.FilesDir,
			help: "Directory for --file (default: /run/secrets/phase-shim when /run/secrets is writable, else a new private directory under $TMPDIR). Must be a real directory owned by this user with mode 0700, or not exist yet. Use a tmpfs: the files outlive phase-shim."},
		{name: "write-file", env: "PHASE_SHIM_WRITE_FILE", placeholder: "PATH", group: "files", str: &g.WriteFile,
			help: "Also write every secret to this file (0400, replaced atomically), for apps that read a config file; the same set export prints."},
		{name: "write-format", env: "PHASE_SHIM_WRITE_FORMAT", placeholder: "F", group: "files", str: &g.WriteFormat,
			help: "Format of --write-file: dotenv, json or shell (default: json for *.json, shell for *.sh, else dotenv)."},

		// Names.
		{name: "invalid-keys", env: "PHASE_SHIM_INVALID_KEYS", kind: kindEnum, enum: []string{"sanitize", "error", "skip", "keep"}, def: "sanitize", placeholder: "MODE", group: "names", str: &g.InvalidKeys,
			help: "Keys that are not portable names ([A-Za-z_][A-Za-z0-9_]*): sanitize (SECRET_KEY? becomes SECRET_KEY_, reported), error (exit 65), skip (drop, reported), keep (pass any name execve can carry)."},

		// Environment.
		{name: "preserve-env", env: "PHASE_SHIM_PRESERVE_ENV", kind: kindBool, group: "environment", b: &g.PreserveEnv,
			help: "A variable already set in the environment keeps its value; the secret is dropped and reported."},
		{name: "keep-token", env: "PHASE_SHIM_KEEP_TOKEN", kind: kindBool, group: "environment", b: &g.KeepToken,
			help: "Leave PHASE_SERVICE_TOKEN and PHASE_SERVICE_TOKEN_FILE in the command's environment (removed by default)."},

		// Init mode.
		{name: "init", env: "PHASE_SHIM_INIT", kind: kindInit, group: "init", init: &g.Init,
			help: "Run the command as a supervised child instead of exec'ing it: forward signals, reap zombies, exit with its status (128+n when killed by signal n). For apps that ignore SIGTERM as PID 1. --init=auto does so only when phase-shim is PID 1."},
		{name: "kill-timeout", env: "PHASE_SHIM_KILL_TIMEOUT", kind: kindDuration, def: "10s", placeholder: "D", group: "init", dur: &g.KillTimeout,
			help: "With --init: SIGKILL the command's process group when it outlives a forwarded SIGTERM or SIGINT by this long (0: never)."},

		// Output.
		{name: "quiet", short: 'q', kind: kindBool, group: "output", b: &g.Quiet,
			help: "Print errors only."},
		{name: "verbose", short: 'v', kind: kindBool, group: "output", b: &g.Verbose,
			help: "Print debug lines (requests, sources, sizes; never values)."},
		{name: "log", env: "PHASE_SHIM_LOG", kind: kindEnum, enum: []string{"quiet", "info", "debug"}, def: "info", placeholder: "LEVEL", group: "output", str: &g.Log,
			help: "Verbosity when neither -q nor -v is given."},
		{name: "log-format", env: "PHASE_SHIM_LOG_FORMAT", kind: kindEnum, enum: []string{"text", "json"}, def: "text", placeholder: "F", group: "output", str: &g.LogFormat,
			help: "stderr format: text, or json (one object per line, for CloudWatch/Loki)."},

		// Per command.
		{name: "output", short: 'o', kind: kindEnum, enum: []string{"table", "json"}, def: "table", placeholder: "F", group: "check", command: "check", str: &c.Check.Output,
			help: "Report format."},
		{name: "format", short: 'f', env: "PHASE_SHIM_EXPORT_FORMAT", kind: kindEnum, enum: []string{"dotenv", "json", "shell", "docker"}, def: "dotenv", placeholder: "F", group: "export", command: "export", str: &c.Export.Format,
			help: "dotenv or json (both read back by --env-file), shell (export KEY='value' lines for sh and bash) or docker (docker run --env-file; refuses values with a newline)."},
	}
}

// commands are the words that name a command before the wrapped command's
// words begin.
var commands = map[string]bool{"run": true, "check": true, "export": true, "version": true, "help": true}

// parseCommandLine reads args (without the program name) and the flags'
// variables through lookupEnv. command is run, check, export, version or help.
// Every error is a usage error (exit 64).
func parseCommandLine(args []string, lookupEnv func(string) (string, bool)) (cli *CLI, command string, err error) {
	cli = &CLI{}
	specs := flagTable(cli)
	byName := map[string]*flagSpec{}
	byShort := map[byte]*flagSpec{}
	for _, f := range specs {
		byName[f.name] = f
		if f.short != 0 {
			byShort[f.short] = f
		}
		if f.def != "" {
			if err := f.set(f.def); err != nil {
				panic("phase-shim: bad default of --" + f.name + ": " + err.Error())
			}
		}
	}

	fromFlag := map[*flagSpec]bool{}
	apply := func(f *flagSpec, v string, spelled string) error {
		if f.command != "" && f.command != command {
			return usageError{fmt.Errorf("%s applies to %s only", spelled, f.command)}
		}
		fromFlag[f] = true
		if err := f.set(v); err != nil {
			return usageError{fmt.Errorf("%s: %w", spelled, err)}
		}
		return nil
	}

	var words []string
	i := 0
scan:
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			words = args[i+1:]
			break scan
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if name == "help" {
				return cli, "help", nil
			}
			f := byName[name]
			negated := false
			if f == nil {
				if base, ok := strings.CutPrefix(name, "no-"); ok && byName[base] != nil && byName[base].kind == kindBool && !hasValue {
					f, negated = byName[base], true
				}
			}
			if f == nil {
				return nil, "", usageError{fmt.Errorf("unknown flag --%s", name)}
			}
			switch {
			case negated:
				value = "false"
			case hasValue:
			case f.kind == kindBool:
				value = "true"
			case f.kind == kindInit:
				value = "true" // a bare --init; --init=auto for the other mode
			case i+1 < len(args):
				i++
				value = args[i]
			default:
				return nil, "", usageError{fmt.Errorf("--%s needs a value", name)}
			}
			if err := apply(f, value, "--"+name); err != nil {
				return nil, "", err
			}
		case strings.HasPrefix(a, "-") && a != "-":
			// Short flags: -q, -v, -qv, -o json, -ojson, -f=json.
			for j := 1; j < len(a); j++ {
				c := a[j]
				if c == 'h' {
					return cli, "help", nil
				}
				f := byShort[c]
				if f == nil {
					return nil, "", usageError{fmt.Errorf("unknown flag -%c", c)}
				}
				if f.kind == kindBool {
					if err := apply(f, "true", "-"+string(c)); err != nil {
						return nil, "", err
					}
					continue
				}
				value := strings.TrimPrefix(a[j+1:], "=")
				if value == "" {
					if i+1 >= len(args) {
						return nil, "", usageError{fmt.Errorf("-%c needs a value", c)}
					}
					i++
					value = args[i]
				}
				if err := apply(f, value, "-"+string(c)); err != nil {
					return nil, "", err
				}
				break
			}
		case command == "" && commands[a]:
			command = a
		default:
			words = args[i:]
			break scan
		}
	}
	if command == "" {
		command = "run"
	}

	// Variables fill what no flag set. An empty variable counts as unset:
	// `FOO=` is how compose files and task definitions leave a setting blank.
	for _, f := range specs {
		if f.env == "" || fromFlag[f] || (f.command != "" && f.command != command) {
			continue
		}
		v, ok := lookupEnv(f.env)
		if !ok || (v == "" && !f.emptyMeans) {
			continue
		}
		if f.kind == kindList {
			*f.list = nil
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*f.list = append(*f.list, part)
				}
			}
			continue
		}
		if err := f.set(v); err != nil {
			return nil, "", usageError{fmt.Errorf("%s (from %s)", err, f.env)}
		}
	}

	if cli.Quiet && cli.Verbose {
		return nil, "", usageError{errors.New("-q and -v cannot be used together")}
	}
	switch command {
	case "run":
		cli.Run.Command = words
	case "check":
		cli.Check.Command = words
	case "help":
		// `phase-shim help ANYTHING` is still help.
	default:
		if len(words) > 0 {
			return nil, "", usageError{fmt.Errorf("%s takes no arguments, got %q", command, words[0])}
		}
	}
	return cli, command, nil
}

// set stores one value. A list flag appends (split on commas when asked).
func (f *flagSpec) set(v string) error {
	switch f.kind {
	case kindString:
		*f.str = v
	case kindEnum:
		for _, e := range f.enum {
			if v == e {
				*f.str = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(f.enum, ", "), v)
	case kindBool:
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*f.b = b
	case kindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s, 5m, 1h30m): %q", v)
		}
		*f.dur = d
	case kindInit:
		m, err := parseInitMode(v)
		if err != nil {
			return err
		}
		*f.init = m
	case kindList:
		if !f.split {
			*f.list = append(*f.list, v)
			return nil
		}
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*f.list = append(*f.list, part)
			}
		}
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "t", "true", "y", "yes", "on":
		return true, nil
	case "0", "f", "false", "n", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", v)
}

const usageText = `Usage: phase-shim [flags] [--] COMMAND [ARG...]      gather, check, merge, exec (= phase-shim run ...)
       phase-shim check [flags] [-- COMMAND [ARG...]]   everything but exec; a report, never values
       phase-shim export [flags] [--format F]           print the merged secrets
       phase-shim version

Fetch secrets from Phase (end-to-end encrypted) and/or files, check their
names, and exec COMMAND with them in its environment: same PID, signals and
exit status go straight to COMMAND. No shell, and nothing written to disk
unless --file or --write-file asks for it.

  PHASE_SERVICE_TOKEN=pss_service:v2:... phase-shim --app-id ID --env production -- node index.js
  phase-shim --env-file .env -- ./server --port 8080
  phase-shim check --env-file .env          # what would be injected (never values)

Everything after -- (or from the first word that is not a flag) is the
command, untouched. Every flag also reads the variable shown next to it; a
flag wins, and an empty variable counts as unset.

Exit codes: 64 usage, 65 bad data (names, NUL, sizes, files, references),
69 Phase unavailable, 76 protocol/tampering, 77 token rejected, 78 configuration
(e.g. no source), 126 not executable, 127 not found: COMMAND never starts then.
Otherwise the status is COMMAND's.
`

// writeHelp prints the usage text and every flag, by group.
func writeHelp(w io.Writer) {
	var b strings.Builder
	b.WriteString(usageText)
	specs := flagTable(&CLI{})
	const col, width = 30, 100
	for _, grp := range groups {
		fmt.Fprintf(&b, "\n%s:\n", grp.title)
		for _, f := range specs {
			if f.group != grp.key {
				continue
			}
			left := "  "
			if f.short != 0 {
				left += "-" + string(f.short) + ", "
			} else {
				left += "    "
			}
			left += "--" + f.name
			switch {
			case f.kind == kindInit:
				left += "[=auto]"
			case f.kind != kindBool:
				left += "=" + f.placeholder
			}
			text := f.help
			if f.kind == kindEnum {
				text += " One of: " + strings.Join(f.enum, ", ") + "."
			}
			if f.def != "" && f.kind != kindBool {
				text += " Default: " + f.def + "."
			}
			if f.env != "" {
				text += " ($" + f.env + ")"
			}
			writeWrapped(&b, left, text, col, width)
		}
	}
	b.WriteString("\n  -h, --help                  This text.\n")
	_, _ = io.WriteString(w, b.String())
}

// writeWrapped writes left, padded to col, then text wrapped at width.
func writeWrapped(b *strings.Builder, left, text string, col, width int) {
	line := left
	if len(line) >= col-1 {
		b.WriteString(line + "\n")
		line = ""
	}
	line += strings.Repeat(" ", col-len(line))
	n := col
	for _, word := range strings.Fields(text) {
		if n+len(word) > width && n > col {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line, n = strings.Repeat(" ", col), col
		}
		line += word + " "
		n += len(word) + 1
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}
