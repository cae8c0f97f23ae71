package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// noEnv is an empty environment, so the tests do not depend on the caller's.
func noEnv(string) (string, bool) { return "", false }

func TestParseCommandLine(t *testing.T) {
	type result struct {
		Command string
		Args    []string
		Init    InitMode
		Host    string
		Files   []string
	}
	const defHost = "https://console.phase.dev"
	tests := []struct {
		name string
		args []string
		want result
	}{
		{"flags then --", []string{"--env-file", "a", "--", "ls", "-l"},
			result{"run", []string{"ls", "-l"}, InitOff, defHost, []string{"a"}}},
		{"no --: command's flags untouched", []string{"--env-file", "a", "ls", "-l", "--env-file", "x"},
			result{"run", []string{"ls", "-l", "--env-file", "x"}, InitOff, defHost, []string{"a"}}},
		{"a command called check after --", []string{"--", "check", "-o", "json"},
			result{"run", []string{"check", "-o", "json"}, InitOff, defHost, nil}},
		{"a command called version after flags and --", []string{"--env-file=a", "--", "version"},
			result{"run", []string{"version"}, InitOff, defHost, []string{"a"}}},
		{"flag value that looks like a command", []string{"--host", "check", "--", "x"},
			result{"run", []string{"x"}, InitOff, "check", nil}},
		{"explicit run strips one --", []string{"run", "--", "--", "x"},
			result{"run", []string{"--", "x"}, InitOff, defHost, nil}},
		{"command that starts with a dash", []string{"--", "-v"},
			result{"run", []string{"-v"}, InitOff, defHost, nil}},
		{"bare --init keeps the command", []string{"--init", "ls"},
			result{"run", []string{"ls"}, InitOn, defHost, nil}},
		{"--init=auto", []string{"--init=auto", "--", "ls"},
			result{"run", []string{"ls"}, InitAuto, defHost, nil}},
		{"repeated --env-file keeps commas", []string{"--env-file", "a,b.env", "--env-file", "c", "--", "x"},
			result{"run", []string{"x"}, InitOff, defHost, []string{"a,b.env", "c"}}},
		{"check with flags after", []string{"check", "--env-file", "a"},
			result{"check", nil, InitOff, defHost, []string{"a"}}},
		{"check with flags before", []string{"--env-file", "a", "check"},
			result{"check", nil, InitOff, defHost, []string{"a"}}},
		{"check with a command", []string{"check", "--env-file", "a", "--", "node", "x.js"},
			result{"check", []string{"node", "x.js"}, InitOff, defHost, []string{"a"}}},
		{"export", []string{"export", "--format", "json"},
			result{"export", nil, InitOff, defHost, nil}},
		{"version", []string{"version"},
			result{"version", nil, InitOff, defHost, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, command, err := parseCommandLine(tt.args, noEnv)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			args := cli.Run.Command
			if command == "check" {
				args = cli.Check.Command
			}
			got := result{command, args, cli.Init, cli.Host, cli.EnvFiles}
			if len(got.Args) == 0 {
				got.Args = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestParseCommandLineErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--invalid-keys", "sometimes", "--", "x"},
		{"--timeout", "soon", "--", "x"},
		{"-q", "-v", "--", "x"},
		{"--log-format", "xml", "--", "x"},
		{"check", "-o", "yaml"},
		{"--init=maybe", "--", "x"},
		{"-qv", "--", "x"},
		{"--env-file"},
		{"-o", "json", "check"},
		{"version", "extra"},
		{"--verify-ssl=maybe", "x"},
	} {
		if _, _, err := parseCommandLine(args, noEnv); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestParseFlagForms(t *testing.T) {
	type got struct {
		VerifySSL bool
		Tags      []string
		Output    string
		Format    string
		Quiet     bool
		Timeout   string
	}
	tests := []struct {
		args []string
		env  map[string]string
		want got
	}{
		{[]string{"--no-verify-ssl", "--", "x"}, nil, got{false, nil, "table", "dotenv", false, "30s"}},
		{[]string{"--verify-ssl=false", "x"}, nil, got{false, nil, "table", "dotenv", false, "30s"}},
		{[]string{"--tags", "a,b", "--tags=c", "x"}, map[string]string{"PHASE_TAGS": "z"}, got{true, []string{"a", "b", "c"}, "table", "dotenv", false, "30s"}},
		{[]string{"x"}, map[string]string{"PHASE_TAGS": "y, z", "PHASE_VERIFY_SSL": "no"}, got{false, []string{"y", "z"}, "table", "dotenv", false, "30s"}},
		{[]string{"check", "-ojson"}, nil, got{true, nil, "json", "dotenv", false, "30s"}},
		{[]string{"-q", "check", "-o", "json"}, nil, got{true, nil, "json", "dotenv", true, "30s"}},
		{[]string{"export", "-f=shell"}, map[string]string{"PHASE_SHIM_EXPORT_FORMAT": "json"}, got{true, nil, "table", "shell", false, "30s"}},
		{[]string{"export"}, map[string]string{"PHASE_SHIM_EXPORT_FORMAT": "json"}, got{true, nil, "table", "json", false, "30s"}},
		{[]string{"--timeout", "2m", "x"}, map[string]string{"PHASE_SHIM_TIMEOUT": "5s"}, got{true, nil, "table", "dotenv", false, "2m0s"}},
		{[]string{"x"}, map[string]string{"PHASE_SHIM_TIMEOUT": "5s"}, got{true, nil, "table", "dotenv", false, "5s"}},
	}
	for _, tt := range tests {
		lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
		cli, _, err := parseCommandLine(tt.args, lookup)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		g := got{cli.VerifySSL, cli.Tags, cli.Check.Output, cli.Export.Format, cli.Quiet, cli.Timeout.String()}
		if diff := cmp.Diff(tt.want, g); diff != "" {
			t.Errorf("%q: -want +got:\n%s", tt.args, diff)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	var out strings.Builder
	if code := Main([]string{"--help"}, &out, io.Discard); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"phase-shim [flags] [--] COMMAND [ARG...]", "Phase (a source when", "Files:", "Names:", "Environment:", "Output:", "PHASE_SHIM_ENV_FILES", "$PHASE_SHIM_INVALID_KEYS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestEnvVarsAndFlags(t *testing.T) {
	t.Setenv("PHASE_SHIM_INVALID_KEYS", "skip")
	t.Setenv("PHASE_SHIM_TIMEOUT", "") // empty counts as unset
	t.Setenv("PHASE_PATH", "")         // except here: every folder
	t.Setenv("PHASE_HOST", "https://phase.example.com")
	cli, _, err := parseCommandLine([]string{"--invalid-keys", "error", "--", "x"}, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cli.InvalidKeys, cli.Timeout.String(), cli.Path, cli.Host}
	want := []string{"error", "30s", "", "https://phase.example.com"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

// FuzzCommandLine: parsing never panics, and the words of the wrapped
// command are never changed or reordered: they are a suffix of the input,
// and everything after a leading `--` reaches the command as it is.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"--env-file\x00a\x00--\x00ls\x00-l",
		"--\x00check",
		"run\x00--\x00--\x00x",
		"--init\x00ls",
		"--host\x00check\x00--\x00--help",
		"check\x00-o\x00json\x00--\x00x",
		"-qv\x00--\x00x",
		"--env-file=--\x00--\x00-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		cli, command, err := parseCommandLine(slices.Clone(args), noEnv)
		if err != nil || command != "run" {
			return
		}
		got := cli.Run.Command
		if len(got) > len(args) || !slices.Equal(got, args[len(args)-len(got):]) {
			t.Fatalf("command words changed: in %q, got %q", args, got)
		}
		if len(args) > 1 && args[0] == "--" && !slices.Equal(got, args[1:]) {
			t.Fatalf("after a leading --: in %q, got %q", args, got)
		}
	})
}

// contract is the part of the command line DESIGN.md fixes: what tests
// outside the repository rely on.
type contract struct {
	TokenFile, Host, AppID, App, Env, Path string
	Tags, EnvFiles                         []string
	InvalidKeys, References                string
	PreserveEnv, KeepToken                 bool
	CAFile                                 string
	VerifySSL                              bool
	Timeout                                time.Duration
	Log, LogFormat                         string
}

func contractOf(g *Globals) contract {
	return contract{g.TokenFile, g.Host, g.AppID, g.App, g.Env, g.Path, g.Tags, g.EnvFiles,
		g.InvalidKeys, g.References, g.PreserveEnv, g.KeepToken, g.CAFile, g.VerifySSL, g.Timeout, g.Log, g.LogFormat}
}

// TestContractDefaultsAndVariables: every default and every variable name
// of DESIGN.md's flag table.
func TestContractDefaultsAndVariables(t *testing.T) {
	cli, _, err := parseCommandLine([]string{"--", "x"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	wantDefaults := contract{Host: "https://console.phase.dev", Path: "/", InvalidKeys: "sanitize", References: "strict",
		VerifySSL: true, Timeout: 30 * time.Second, Log: "info", LogFormat: "text"}
	if diff := cmp.Diff(wantDefaults, contractOf(&cli.Globals)); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}

	env := map[string]string{
		"PHASE_SERVICE_TOKEN_FILE": "/run/secrets/token",
		"PHASE_HOST":               "https://phase.example.com",
		"PHASE_APP_ID":             "app-id",
		"PHASE_APP":                "shop",
		"PHASE_ENV":                "prod",
		"PHASE_PATH":               "/api",
		"PHASE_TAGS":               "a,b_c",
		"PHASE_SHIM_ENV_FILES":     "one.env,two.json",
		"PHASE_SHIM_INVALID_KEYS":  "error",
		"PHASE_SHIM_REFERENCES":    "lenient",
		"PHASE_SHIM_PRESERVE_ENV":  "true",
		"PHASE_SHIM_KEEP_TOKEN":    "1",
		"PHASE_CA_FILE":            "/ca.pem",
		"PHASE_VERIFY_SSL":         "false",
		"PHASE_SHIM_TIMEOUT":       "5s",
		"PHASE_SHIM_LOG":           "debug",
		"PHASE_SHIM_LOG_FORMAT":    "json",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cli, _, err = parseCommandLine([]string{"--", "x"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	wantVars := contract{"/run/secrets/token", "https://phase.example.com", "app-id", "shop", "prod", "/api",
		[]string{"a", "b_c"}, []string{"one.env", "two.json"}, "error", "lenient", true, true, "/ca.pem", false,
		5 * time.Second, "debug", "json"}
	if diff := cmp.Diff(wantVars, contractOf(&cli.Globals)); diff != "" {
		t.Errorf("from the variables (-want +got):\n%s", diff)
	}

	for _, level := range []string{"quiet", "info", "debug"} {
		env = map[string]string{"PHASE_SHIM_LOG": level}
		cli, _, err = parseCommandLine([]string{"--", "x"}, lookup)
		if err != nil {
			t.Fatalf("PHASE_SHIM_LOG=%s: %v", level, err)
		}
		want := map[string]int{"quiet": levelError, "info": levelInfo, "debug": levelDebug}[level]
		if got := newLogger(io.Discard, &cli.Globals).level; got != want {
			t.Errorf("PHASE_SHIM_LOG=%s: level %d, want %d", level, got, want)
		}
	}
}

// TestStderrPrefix: every line phase-shim writes to stderr starts with
// "phase-shim: ", also when an argument put a newline into a message.
func TestStderrPrefix(t *testing.T) {
	for _, args := range [][]string{
		{"--no\nsuch-flag"},
		{"--env-file", "/nonexistent/a\nb.env", "--", "x"},
		{"check", "--env-file", "/nonexistent/a\nb.env"},
	} {
		var stderr strings.Builder
		if code := Main(args, io.Discard, &stderr); code == 0 {
			t.Errorf("Main(%q) = 0, want a failure", args)
		}
		for _, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
			if !strings.HasPrefix(line, "phase-shim: ") {
				t.Errorf("Main(%q): stderr line without the prefix: %q", args, line)
			}
		}
	}
}
