package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Log levels, from quietest.
const (
	levelError = iota
	levelWarn
	levelInfo
	levelDebug
)

var levelNames = [...]string{"error", "warn", "info", "debug"}

// logger writes phase-shim's own lines to stderr. It is handed names, counts,
// sources and sizes only; callers never pass a value or a token.
type logger struct {
	w     io.Writer
	level int
	json  bool
}

// field is one key/value of a structured line (json format only; the text
// format carries the same facts in the message).
type field struct {
	Key   string
	Value any
}

func newLogger(w io.Writer, g *Globals) *logger {
	l := &logger{w: w, level: levelInfo, json: g.LogFormat == "json"}
	switch g.Log {
	case "quiet":
		l.level = levelError
	case "debug":
		l.level = levelDebug
	}
	// The flags win over PHASE_SHIM_LOG.
	if g.Quiet {
		l.level = levelError
	}
	if g.Verbose {
		l.level = levelDebug
	}
	return l
}

func (l *logger) Error(msg string, fields ...field) { l.log(levelError, msg, fields) }
func (l *logger) Warn(msg string, fields ...field)  { l.log(levelWarn, msg, fields) }
func (l *logger) Info(msg string, fields ...field)  { l.log(levelInfo, msg, fields) }
func (l *logger) Debug(msg string, fields ...field) { l.log(levelDebug, msg, fields) }

// Debugf has the shape fetch.PhaseOptions.Debugf wants.
func (l *logger) Debugf(format string, args ...any) {
	if l.level >= levelDebug {
		l.log(levelDebug, fmt.Sprintf(format, args...), nil)
	}
}

func (l *logger) log(level int, msg string, fields []field) {
	if level > l.level {
		return
	}
	var b bytes.Buffer
	if l.json {
		b.WriteString(`{"level":`)
		writeJSON(&b, levelNames[level])
		b.WriteString(`,"msg":`)
		writeJSON(&b, msg)
		for _, f := range fields {
			b.WriteByte(',')
			writeJSON(&b, f.Key)
			b.WriteByte(':')
			writeJSON(&b, f.Value)
		}
		b.WriteString("}\n")
	} else {
		prefix := "phase-shim: "
		switch level {
		case levelError:
			prefix += "error: "
		case levelWarn:
			prefix += "warning: "
		case levelDebug:
			prefix += "debug: "
		}
		// Every line carries the prefix, even inside a multi-line message
		// (e.g. a list of environments), so log routers can attribute it.
		for line := range strings.SplitSeq(strings.TrimRight(msg, "\n"), "\n") {
			b.WriteString(prefix)
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	// One Write per line keeps lines whole when stderr is shared.
	_, _ = l.w.Write(b.Bytes())
}

func writeJSON(b *bytes.Buffer, v any) {
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(enc)
}
