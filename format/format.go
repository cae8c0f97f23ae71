// Package format writes a merged set of secrets for `export` and
// --write-file. Each format is written so that its consumer reads back exactly
// the bytes it was given, and a pair a format cannot carry is refused with an
// error naming the key (never the value) before anything is written.
package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	shimexec "github.com/phase-shim/phase-shim/exec"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/sanitize"
)

// Format names an output format.
type Format string

const (
	// Dotenv is the docker compose dialect, every value double-quoted and
	// escaped; it reads back through --env-file and compose's env_file.
	Dotenv Format = "dotenv"
	// JSON is a flat object of strings; it reads back through --env-file and
	// any JSON reader. It cannot carry bytes that are not UTF-8.
	JSON Format = "json"
	// Shell is `export KEY='value'` lines for `. file` in sh, dash or bash.
	Shell Format = "shell"
	// Docker is raw KEY=VALUE lines for `docker run --env-file`, which reads
	// no quotes or escapes at all.
	Docker Format = "docker"
)

// Formats lists the formats in the order help texts show them.
var Formats = []Format{Dotenv, JSON, Shell, Docker}

// ErrUnknownFormat is returned by ParseFormat (a usage error).
var ErrUnknownFormat = errors.New("unknown format")

// ErrCannotCarry is matched (errors.Is) by every error Write returns for a
// pair the format cannot hold; such an error also matches fetch.ErrData, so
// the command line exits 65 for it like for any other bad data.
var ErrCannotCarry = errors.New("format cannot carry this secret")

// ErrDuplicate is matched by the error Write returns when a name appears
// twice: readers disagree about which one wins, so none is written.
var ErrDuplicate = errors.New("duplicate name")

type carryError struct {
	format Format
	key    string
	reason string
	dup    bool
}

func (e *carryError) Error() string {
	return fmt.Sprintf("%s format cannot carry %q: %s", e.format, e.key, e.reason)
}

func (e *carryError) Is(target error) bool {
	if e.dup && target == ErrDuplicate {
		return true
	}
	return target == ErrCannotCarry || target == fetch.ErrData
}

// ParseFormat accepts a format name, case-insensitively.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q (want dotenv, json, shell or docker)", ErrUnknownFormat, s)
}

// Write writes vars to w in format f. Every pair is checked first and the
// output is built in memory, so on an error nothing at all has been written
// (a half-written export looks complete to whoever reads it).
func Write(w io.Writer, f Format, vars []shimexec.Var) error {
	var check func(name, value string) string
	var line func(b *bytes.Buffer, name, value string)
	switch f {
	case Dotenv:
		check, line = dotenvProblem, dotenvLine
	case JSON:
		check = jsonProblem
	case Shell:
		check, line = shellProblem, shellLine
	case Docker:
		check, line = dockerProblem, dockerLine
	default:
		return fmt.Errorf("%w %q", ErrUnknownFormat, string(f))
	}
	seen := make(map[string]bool, len(vars))
	for _, v := range vars {
		if seen[v.Name] {
			return &carryError{format: f, key: v.Name, reason: "the name appears twice", dup: true}
		}
		seen[v.Name] = true
		if reason := check(v.Name, v.Value); reason != "" {
			return &carryError{format: f, key: v.Name, reason: reason}
		}
	}
	var b bytes.Buffer
	if f == JSON {
		if err := writeJSON(&b, vars); err != nil {
			return err
		}
	} else {
		for _, v := range vars {
			line(&b, v.Name, v.Value)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// dotenv: double quotes carry every byte but NUL through ParseDotenv and
// compose alike. NUL could be written as \0000, but no environment can hold
// it and other dotenv readers would take \0000 literally; refusing it points
// the user at --file KEY instead.
func dotenvProblem(name, value string) string {
	if p := fetch.DotenvKeyProblem(name); p != "" {
		return p
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "value contains a NUL byte"
	}
	return ""
}

func dotenvLine(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		// '$' is escaped so compose, which interpolates, reads it as '$' too.
		case '$':
			b.WriteString(`\$`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString("\"\n")
}

func jsonProblem(name, value string) string {
	if !utf8.ValidString(name) {
		return "the name is not valid UTF-8 (JSON strings hold characters, not bytes)"
	}
	if !utf8.ValidString(value) {
		return "value is not valid UTF-8 (JSON strings hold characters, not bytes; use --format dotenv)"
	}
	return ""
}

func writeJSON(b *bytes.Buffer, vars []shimexec.Var) error {
	if len(vars) == 0 {
		b.WriteString("{}\n")
		return nil
	}
	// The Encoder with HTML escaping off keeps <, > and & readable; it
	// appends a newline after each string, which is trimmed.
	var s bytes.Buffer
	enc := json.NewEncoder(&s)
	enc.SetEscapeHTML(false)
	quote := func(str string) error {
		s.Reset()
		if err := enc.Encode(str); err != nil {
			return err
		}
		b.Write(bytes.TrimSuffix(s.Bytes(), []byte("\n")))
		return nil
	}
	b.WriteString("{\n")
	for i, v := range vars {
		b.WriteString("  ")
		if err := quote(v.Name); err != nil {
			return err
		}
		b.WriteString(": ")
		if err := quote(v.Value); err != nil {
			return err
		}
		if i < len(vars)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return nil
}

// shell: inside single quotes sh takes every byte literally except the
// closing quote, so a quote is written as the four bytes quote, backslash,
// quote, quote: close, escaped quote, reopen.
// Only a portable name can follow `export`, and no shell variable holds NUL.
func shellProblem(name, value string) string {
	if !sanitize.Portable(name) {
		return "not a shell variable name ([A-Za-z_][A-Za-z0-9_]*); use --invalid-keys sanitize"
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "value contains a NUL byte"
	}
	return ""
}

func shellLine(b *bytes.Buffer, name, value string) {
	b.WriteString("export ")
	b.WriteString(name)
	b.WriteString("='")
	b.WriteString(strings.ReplaceAll(value, "'", `'\''`))
	b.WriteString("'\n")
}

// dockerMaxLine is the longest line docker's env-file reader accepts: it
// uses a bufio.Scanner with the default 64 KiB buffer, which must hold the
// line and its '\n'.
const dockerMaxLine = 64*1024 - 1

// docker: the docker CLI reads an env file line by line (bufio.Scanner),
// rejects lines that are not UTF-8, trims leading blanks from the line and
// drops a '\r' before the line end, takes the key up to the first '=' and
// passes the rest on untouched. So a value keeps its own blanks and quotes,
// but cannot hold a newline, NUL, invalid UTF-8 or a trailing '\r', and a key
// cannot hold a blank or start with '#'.
func dockerProblem(name, value string) string {
	switch {
	case name == "":
		return "empty name"
	case name[0] == '#':
		return "the name starts with '#' (a comment line)"
	case strings.ContainsAny(name, "=\x00"):
		return "the name contains '=' or NUL"
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "the name contains a blank or a control character"
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	case strings.IndexByte(value, '\n') >= 0:
		return "value contains a newline (docker env files have no quoting; use --format dotenv or json)"
	case strings.IndexByte(value, 0) >= 0:
		return "value contains a NUL byte"
	case strings.HasSuffix(value, "\r"):
		return "value ends with a carriage return (docker drops it)"
	case !utf8.ValidString(value):
		return "value is not valid UTF-8 (docker rejects the file)"
	case len(name)+1+len(value) > dockerMaxLine:
		return fmt.Sprintf("the line would be %d bytes, docker reads at most %d", len(name)+1+len(value), dockerMaxLine)
	}
	return ""
}

func dockerLine(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(value)
	b.WriteByte('\n')
}
