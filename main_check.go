package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/phase-shim/phase-shim/deliver"
	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/format"
	"github.com/phase-shim/phase-shim/sanitize"
)

// reportRow is one line of `check`: what happens to one key from one
// source. It holds the value's size, never the value.
type reportRow struct {
	Key    string `json:"key"`              // as the source spelled it
	Name   string `json:"name,omitempty"`   // as the command will see it, when it gets it
	Source string `json:"source"`           // e.g. phase:/ or file:.env
	Action string `json:"action"`           // kept, renamed, skipped, rejected, overridden, preserved
	Detail string `json:"detail,omitempty"` // the human part: "renamed from …", "overridden by …"
	Size   int    `json:"size"`             // value length in bytes
}

// cacheUse says whether --cache-dir supplied the Phase secrets.
type cacheUse struct {
	Used       bool `json:"used"`
	AgeSeconds int  `json:"age_seconds,omitempty"`
}

type report struct {
	OK       bool        `json:"ok"`
	ExitCode int         `json:"exit_code"`
	Error    string      `json:"error,omitempty"`
	App      string      `json:"app,omitempty"`
	Env      string      `json:"env,omitempty"`
	Path     *string     `json:"path,omitempty"`
	Cache    *cacheUse   `json:"cache,omitempty"`
	Files    []string    `json:"files"`
	FilesDir string      `json:"files_dir,omitempty"` // --file directory, when a key goes to a file
	Warnings []string    `json:"warnings,omitempty"`
	Secrets  int         `json:"secrets"` // how many variables the command would get from secrets
	Rows     []reportRow `json:"entries"`
}

// rows builds the report from however far the pipeline got.
func (p *plan) rows() []reportRow {
	// Size of each value a later source overrode, looked up by (name, source).
	type ns struct{ name, source string }
	lost := map[ns]int{}
	for _, l := range p.layers {
		for _, v := range l {
			lost[ns{v.Name, v.Source}] = len(v.Value)
		}
	}
	overridden := map[string][]shimexec.Override{}
	for _, o := range p.overrides {
		overridden[o.Name] = append(overridden[o.Name], o)
	}
	toFile := map[string]deliver.File{}
	if p.delivery != nil {
		for _, f := range p.delivery.Files {
			toFile[f.Key] = f
		}
	}
	entry := map[string]shimexec.EnvEntry{}
	for _, e := range p.entries {
		entry[e.Name] = e
	}

	var rows []reportRow
	for i, v := range p.merged {
		for _, o := range overridden[v.Name] {
			rows = append(rows, reportRow{Key: o.Name, Source: o.Source, Action: "overridden",
				Detail: "overridden by " + o.By, Size: lost[ns{o.Name, o.Source}]})
		}
		r := reportRow{Key: v.Name, Source: v.Source, Size: len(v.Value), Action: "kept", Detail: "kept"}
		if i < len(p.decisions) {
			d := p.decisions[i]
			r.Name = d.Name
			switch d.Action {
			case sanitize.Renamed:
				r.Action, r.Detail = "renamed", "renamed from "+quoteName(d.Original)+" to "+quoteName(d.Name)
			case sanitize.Skipped:
				r.Action, r.Detail = "skipped", d.Reason
			case sanitize.Rejected:
				r.Action, r.Detail = "rejected", d.Reason
			case sanitize.Kept:
				if !sanitize.Portable(d.Name) {
					r.Detail = d.Reason
				}
			}
			if f, ok := toFile[d.Name]; ok && (d.Action == sanitize.Kept || d.Action == sanitize.Renamed) {
				r.Name = f.Var
				r.Action = "file"
				if d.Action == sanitize.Renamed {
					r.Detail += ", to file " + f.Path + " (" + f.Var + ")"
				} else {
					r.Detail = "to file " + f.Path + " (" + f.Var + ")"
				}
			} else if e, ok := entry[d.Name]; ok && (d.Action == sanitize.Kept || d.Action == sanitize.Renamed) {
				switch e.Action {
				case shimexec.Preserved:
					r.Action, r.Detail = "preserved", "preserved: the inherited value is kept (--preserve-env)"
				case shimexec.OverridesInherited:
					r.Detail += ", overrides the inherited value"
				}
			}
		} else {
			r.Action, r.Detail = "pending", "not checked (an earlier error)"
		}
		rows = append(rows, r)
	}
	return rows
}

// cmdCheck runs everything except exec and reports. Its exit status is the
// one run would have (0 when run would exec).
func cmdCheck(cli *CLI, log *logger, stdout io.Writer) int {
	p, err := gather(cli, log)
	argv := cli.Check.Command
	if err == nil && len(argv) > 0 {
		var path string
		if path, err = shimexec.LookPath(argv[0], p.envp); err == nil {
			err = shimexec.CheckLimitsPath(path, argv, p.envp)
		}
	}
	if err == nil && len(argv) == 0 {
		// No command: still check the environment against the limits.
		err = shimexec.CheckLimits(nil, p.envp)
	}
	code := exitCode(err)

	rep := report{OK: err == nil, ExitCode: code, Files: p.files, Rows: p.rows()}
	if rep.Files == nil {
		rep.Files = []string{}
	}
	if rep.Rows == nil {
		rep.Rows = []reportRow{}
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if p.phase != nil {
		rep.App, rep.Env, rep.Path = p.phase.App, p.phase.Env, &p.phase.Path
		if cli.CacheDir != "" {
			rep.Cache = &cacheUse{Used: p.phase.FromCache, AgeSeconds: int(p.phase.CacheAge.Seconds())}
		}
	}
	if p.delivery != nil && len(p.delivery.Files) > 0 {
		rep.FilesDir = p.delivery.Dir
		rep.Warnings = p.delivery.Warnings
		for _, w := range p.delivery.Warnings {
			log.Warn(w, field{"dir", p.delivery.Dir})
		}
	}
	if wf := cli.Globals.WriteFile; wf != "" && err == nil {
		if w := deliver.TmpfsWarning(filepath.Dir(wf)); w != "" {
			rep.Warnings = append(rep.Warnings, w)
			log.Warn(w, field{"file", wf})
		}
	}
	for _, e := range p.entries {
		if e.Action != shimexec.Preserved {
			rep.Secrets++
		}
	}

	var werr error
	if cli.Check.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		werr = enc.Encode(rep)
	} else {
		werr = writeTable(stdout, rep.Rows)
		if werr == nil && p.phase != nil && p.phase.FromCache {
			_, werr = fmt.Fprintf(stdout, "source: cached secrets saved %s ago (Phase unreachable after %d attempts)\n",
				p.phase.CacheAge.Round(time.Second), p.phase.Attempts)
		}
	}
	if err != nil {
		return fail(log, err)
	}
	if werr != nil {
		log.Error("writing the report: " + werr.Error())
		return 74
	}
	summary(log, p, "check: would inject")
	return 0
}

// exportVars is what export prints and --write-file holds: the secrets
// after the name policy, with their values (--file does not apply), minus
// those an inherited variable wins over with --preserve-env.
func exportVars(p *plan) []shimexec.Var {
	preserved := map[string]bool{}
	for _, e := range p.entries {
		if e.Action == shimexec.Preserved {
			preserved[e.Name] = true
		}
	}
	vars := make([]shimexec.Var, 0, len(p.vars))
	for _, v := range p.vars {
		if !preserved[v.Name] {
			vars = append(vars, v)
		}
	}
	return vars
}

func writeTable(w io.Writer, rows []reportRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSOURCE\tACTION\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", quoteName(r.Key), r.Source, r.Detail, strconv.Itoa(r.Size))
	}
	return tw.Flush()
}

// cmdExport prints the secrets after layering and the name policy, without
// the inherited environment: what the command would get from phase-shim.
func cmdExport(cli *CLI, log *logger, stdout io.Writer) int {
	f, err := format.ParseFormat(cli.Export.Format)
	if err != nil {
		return fail(log, usageError{err})
	}
	p, err := gather(cli, log)
	if err != nil {
		return fail(log, err)
	}
	if err := format.Write(stdout, f, exportVars(p)); err != nil {
		if errors.Is(err, format.ErrCannotCarry) {
			return fail(log, err)
		}
		// stdout refused the bytes (a full disk, a closed pipe): EX_IOERR,
		// as for check's report, not an internal error.
		log.Error("writing the secrets: " + err.Error())
		return 74
	}
	summary(log, p, "exported")
	return 0
}
