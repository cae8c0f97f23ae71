package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/deliver"
	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/format"
	"github.com/phase-shim/phase-shim/sanitize"
)

// plan is everything the pipeline found out, filled step by step so that
// `check` can report as far as it got when a later step fails.
type plan struct {
	phase     *phaseInfo       // nil when Phase was not a source
	files     []string         // --env-file paths, in order
	layers    [][]shimexec.Var // one per source, in order (Phase first)
	merged    []shimexec.Var   // after layering, original key names
	overrides []shimexec.Override
	decisions []sanitize.Decision // one per merged entry
	vars      []shimexec.Var      // after the name policy: what goes to the command
	delivery  *deliver.Delivery   // --file: keys moved to files; its Vars replace vars in envp
	envp      []string
	entries   []shimexec.EnvEntry
}

// gather runs the pipeline up to and including envp. It stops at the first
// error; p holds whatever was established before it.
func gather(cli *CLI, log *logger) (p *plan, err error) {
	g := &cli.Globals
	p = &plan{files: envFiles(g)}
	if g.WriteFile != "" {
		// A bad --write-format or an unwritable place: fail before any
		// request, and in check as in run.
		if _, err := writeFormat(g); err != nil {
			return p, err
		}
		if err := deliver.CheckWritable(filepath.Dir(g.WriteFile)); err != nil {
			return p, err
		}
	}

	token, err := readToken(g, log)
	if err != nil {
		return p, err
	}
	// The deadline covers everything: an AWS IAM login, then Phase.
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()

	useCache := true
	if g.AWSIAMServiceAccountID != "" {
		if token != "" {
			return p, fmt.Errorf("%w: both a Phase token and --aws-iam-service-account-id are set; use one", fetch.ErrConfig)
		}
		if token, err = awsLogin(ctx, g, log); err != nil {
			return p, err
		}
		// A minted token differs on every start, so a cache keyed on it
		// could never be read back; and with Phase down the login fails first.
		useCache = false
	}
	if token == "" && len(p.files) == 0 {
		return p, noSourceError(g)
	}
	if g.CacheDir != "" && g.CacheMaxAge <= 0 {
		return p, usageError{errors.New("--cache-max-age must be positive")}
	}
	if g.CacheFallbackAfter < 0 {
		return p, usageError{errors.New("--cache-fallback-after must not be negative (0 waits the whole --timeout)")}
	}

	if token != "" {
		res, secrets, err := fetchPhase(ctx, g, token, useCache, log)
		if err != nil {
			return p, err
		}
		p.phase = res
		p.layers = append(p.layers, toVars(secrets))
		log.Debug(fmt.Sprintf("phase: %d secrets from app %q, env %q, path %q (%d requests, %d attempts)",
			len(secrets), res.App, res.Env, res.Path, res.Requests, res.Attempts),
			field{"secrets", len(secrets)}, field{"requests", res.Requests}, field{"attempts", res.Attempts})
	}
	for _, f := range p.files {
		secrets, err := fetch.ReadFile(f)
		if err != nil {
			return p, err
		}
		log.Debug(fmt.Sprintf("file %s: %d secrets", f, len(secrets)), field{"file", f}, field{"secrets", len(secrets)})
		p.layers = append(p.layers, toVars(secrets))
	}

	p.merged, p.overrides = shimexec.Layer(p.layers...)
	for _, o := range p.overrides {
		log.Debug(fmt.Sprintf("%s from %s overrides the one from %s", quoteName(o.Name), o.By, o.Source),
			field{"key", o.Name}, field{"source", o.By}, field{"overrides", o.Source})
	}

	mode, err := sanitize.ParseMode(g.InvalidKeys)
	if err != nil {
		return p, usageError{err}
	}
	keys := make([]string, len(p.merged))
	for i, v := range p.merged {
		keys[i] = v.Name
	}
	p.decisions, err = sanitize.Apply(mode, keys)
	if err != nil {
		return p, err
	}
	for i, d := range p.decisions {
		v := p.merged[i]
		switch d.Action {
		case sanitize.Renamed:
			log.Warn(fmt.Sprintf("key %s from %s %s", quoteName(d.Original), v.Source, d.Reason),
				field{"key", d.Original}, field{"name", d.Name}, field{"source", v.Source})
		case sanitize.Skipped:
			log.Warn(fmt.Sprintf("key %s from %s %s", quoteName(d.Original), v.Source, d.Reason),
				field{"key", d.Original}, field{"source", v.Source})
		}
		if d.Action == sanitize.Kept || d.Action == sanitize.Renamed {
			p.vars = append(p.vars, shimexec.Var{Name: d.Name, Value: v.Value, Source: v.Source})
		}
	}

	// --file: decided here so that check shows it; written by run only,
	// after every other check passed.
	p.delivery, err = deliver.Plan(p.vars, deliver.Options{Patterns: g.Files, Dir: g.FilesDir})
	if err != nil {
		return p, err
	}
	for _, f := range p.delivery.Files {
		log.Debug(fmt.Sprintf("%s from %s goes to file %s (%s, %d bytes)", quoteName(f.Key), f.Source, f.Path, f.Var, f.Size),
			field{"key", f.Key}, field{"file", f.Path}, field{"var", f.Var}, field{"size", f.Size})
	}

	scrub := tokenVars
	if g.KeepToken {
		scrub = nil
	}
	p.envp, p.entries, err = shimexec.BuildEnv(p.delivery.Vars, shimexec.EnvOptions{
		Environ:     os.Environ(),
		PreserveEnv: g.PreserveEnv,
		Scrub:       scrub,
	})
	if err != nil {
		return p, err
	}
	for _, e := range p.entries {
		if e.Action == shimexec.Preserved {
			log.Info(fmt.Sprintf("kept the inherited %s (--preserve-env); the secret from %s is not used", quoteName(e.Name), e.Source),
				field{"key", e.Name}, field{"source", e.Source})
		}
	}
	return p, nil
}

func toVars(secrets []fetch.Secret) []shimexec.Var {
	vs := make([]shimexec.Var, len(secrets))
	for i, s := range secrets {
		vs[i] = shimexec.Var{Name: s.Key, Value: s.Value, Source: s.Source}
	}
	return vs
}

// envFiles returns the --env-file paths (or PHASE_SHIM_ENV_FILES's),
// without blank entries.
func envFiles(g *Globals) []string {
	var out []string
	for _, f := range g.EnvFiles {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// readToken returns the Phase token, or "" when none is configured. A token
// file (flag, else PHASE_SERVICE_TOKEN_FILE) wins over PHASE_SERVICE_TOKEN:
// it is the more deliberate of the two in a container.
func readToken(g *Globals, log *logger) (string, error) {
	if g.TokenFile != "" {
		b, err := os.ReadFile(g.TokenFile)
		if err != nil {
			// The error names the path only; the file's content is never read into a message.
			return "", fmt.Errorf("%w: cannot read the token file: %w", fetch.ErrConfig, err)
		}
		t := strings.TrimRight(string(b), "\r\n \t")
		if t == "" {
			return "", fmt.Errorf("%w: token file %s is empty", fetch.ErrAuth, g.TokenFile)
		}
		if os.Getenv("PHASE_SERVICE_TOKEN") != "" {
			log.Debug("both a token file and PHASE_SERVICE_TOKEN are set; using the token file")
		}
		log.Debug("token from file " + g.TokenFile)
		return t, nil
	}
	t := strings.TrimRight(os.Getenv("PHASE_SERVICE_TOKEN"), "\r\n \t")
	if t != "" {
		log.Debug("token from PHASE_SERVICE_TOKEN")
	}
	return t, nil
}

func noSourceError(g *Globals) error {
	msg := "no source of secrets: set PHASE_SERVICE_TOKEN (or --token-file, or --aws-iam-service-account-id) to read from Phase, or give --env-file PATH"
	if g.AppID != "" || g.App != "" || g.Env != "" {
		msg = "no Phase token: --app-id/--app/--env need PHASE_SERVICE_TOKEN, --token-file or --aws-iam-service-account-id (or give --env-file PATH)"
	}
	return fmt.Errorf("%w: %s", fetch.ErrConfig, msg)
}

// cmdRun is the default command: gather, check, exec. It returns only on
// failure; on success the process becomes the command.
func cmdRun(cli *CLI, log *logger) int {
	argv := cli.Run.Command
	if len(argv) == 0 {
		log.Error(errNoCommand.Error())
		return 64
	}
	p, err := gather(cli, log)
	if err != nil {
		return fail(log, err)
	}
	path, err := shimexec.LookPath(argv[0], p.envp)
	if err != nil {
		return fail(log, err)
	}
	// Before the files are written, so a run that cannot exec leaves none;
	// path counts as the kernel counts it.
	if err := shimexec.CheckLimitsPath(path, argv, p.envp); err != nil {
		return fail(log, err)
	}
	if err := writeFiles(cli, log, p); err != nil {
		return fail(log, err)
	}
	summary(log, p, "injected")
	if supervised(&cli.Globals) {
		return runSupervised(&cli.Globals, log, path, argv, p.envp)
	}
	err = shimexec.Exec(path, argv, p.envp)
	return fail(log, err)
}

// writeFiles writes the --file files and the --write-file, the last step
// before exec: a run that fails a check leaves nothing on disk.
func writeFiles(cli *CLI, log *logger, p *plan) error {
	g := &cli.Globals
	if err := p.delivery.Write(); err != nil {
		return err
	}
	for _, w := range p.delivery.Warnings {
		log.Warn(w, field{"dir", p.delivery.Dir})
	}
	if g.WriteFile == "" {
		return nil
	}
	f, err := writeFormat(g)
	if err != nil {
		return err
	}
	if err := deliver.WriteAll(g.WriteFile, f, exportVars(p)); err != nil {
		return err
	}
	if w := deliver.TmpfsWarning(filepath.Dir(g.WriteFile)); w != "" {
		log.Warn(w, field{"file", g.WriteFile})
	}
	log.Debug("wrote "+g.WriteFile, field{"file", g.WriteFile})
	return nil
}

// writeFormat is --write-format, or the one the --write-file name suggests.
func writeFormat(g *Globals) (format.Format, error) {
	if g.WriteFormat == "" {
		return deliver.FormatForPath(g.WriteFile), nil
	}
	f, err := format.ParseFormat(g.WriteFormat)
	if err == nil && f == format.Docker {
		// docker's env file has no quoting: it would not read back through
		// --env-file, which is what --write-file promises.
		err = errors.New("docker is for export only; use dotenv, json or shell")
	}
	if err != nil {
		return "", usageError{fmt.Errorf("--write-format: %w", err)}
	}
	return f, nil
}

// summary writes the one info line of a run:
// injected 42 secrets (app "shop", env "Production", path "/"; 2 renamed)
func summary(log *logger, p *plan, verb string) {
	n, preserved := 0, 0
	for _, e := range p.entries {
		if e.Action == shimexec.Preserved {
			preserved++
		} else {
			n++
		}
	}
	renamed, skipped := sanitize.Count(p.decisions, sanitize.Renamed), sanitize.Count(p.decisions, sanitize.Skipped)
	var where []string
	fields := []field{{"secrets", n}}
	if p.phase != nil {
		path := p.phase.Path
		if path == "" {
			path = "*"
		}
		where = append(where, fmt.Sprintf("app %q, env %q, path %q", p.phase.App, p.phase.Env, path))
		fields = append(fields, field{"app", p.phase.App}, field{"env", p.phase.Env}, field{"path", p.phase.Path})
	}
	if len(p.files) > 0 {
		q := make([]string, len(p.files))
		for i, f := range p.files {
			q[i] = strconv.Quote(f)
		}
		word := "file "
		if len(q) > 1 {
			word = "files "
		}
		where = append(where, word+strings.Join(q, ", "))
		fields = append(fields, field{"files", p.files})
	}
	var notes []string
	count := func(k int, what string) {
		if k > 0 {
			notes = append(notes, fmt.Sprintf("%d %s", k, what))
			fields = append(fields, field{strings.ReplaceAll(what, " ", "_"), k})
		}
	}
	count(renamed, "renamed")
	count(skipped, "skipped")
	count(len(p.overrides), "overridden")
	count(preserved, "preserved")
	if p.delivery != nil {
		count(len(p.delivery.Files), "as files")
	}
	if p.phase != nil && p.phase.Attempts > p.phase.Requests {
		count(p.phase.Attempts, "attempts")
	}
	if p.phase != nil && p.phase.FromCache {
		age := p.phase.CacheAge.Round(time.Second)
		notes = append(notes, "from the cache, "+age.String()+" old")
		fields = append(fields, field{"from_cache", true}, field{"cache_age_seconds", int(age.Seconds())})
	}
	noun := "secrets"
	if n == 1 {
		noun = "secret"
	}
	inner := strings.Join(where, "; ")
	if len(notes) > 0 {
		inner += "; " + strings.Join(notes, ", ")
	}
	log.Info(fmt.Sprintf("%s %d %s (%s)", verb, n, noun, inner), fields...)
}

// quoteName shows a key name unambiguously: plain when portable, quoted
// (with escapes) otherwise, so a newline in a name cannot forge a log line.
func quoteName(name string) string {
	if sanitize.Portable(name) {
		return name
	}
	return strconv.Quote(name)
}

// exitCode maps an error to the documented sysexits-style status.
func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u), errors.Is(err, deliver.ErrPattern):
		return 64
	case errors.Is(err, deliver.ErrNoMatch), errors.Is(err, deliver.ErrName), errors.Is(err, deliver.ErrFormat):
		return 65
	case errors.Is(err, deliver.ErrUnsafeDir), errors.Is(err, deliver.ErrWrite):
		return 78
	case errors.Is(err, shimexec.ErrNotFound):
		return 127
	case errors.Is(err, shimexec.ErrNotExecutable):
		return 126
	case errors.Is(err, fetch.ErrData),
		errors.Is(err, sanitize.ErrInvalidName), errors.Is(err, sanitize.ErrCollision),
		errors.Is(err, shimexec.ErrNUL), errors.Is(err, shimexec.ErrTooLarge), errors.Is(err, shimexec.ErrInvalidName):
		return 65
	case errors.Is(err, fetch.ErrUnavailable):
		return 69
	case errors.Is(err, fetch.ErrProtocol):
		return 76
	case errors.Is(err, fetch.ErrAuth):
		return 77
	case errors.Is(err, fetch.ErrConfig):
		return 78
	}
	return 70 // EX_SOFTWARE: an error nobody classified is a bug
}

// phaseInfo is what the summary and `check` say about the Phase source.
type phaseInfo struct {
	App, Env, Path     string
	Requests, Attempts int
	FromCache          bool
	CacheAge           time.Duration
}
