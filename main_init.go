package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/phase-shim/phase-shim/supervise"
)

// InitMode is --init: off (the default: plain exec), on (--init,
// --init=true) or auto (--init=auto: supervise only when phase-shim is PID 1).
type InitMode int

const (
	InitOff InitMode = iota
	InitOn
	InitAuto
)

// IsBool lets kong accept a bare --init, as for a bool flag, so that
// `--init ls` keeps ls as the command.
func (*InitMode) IsBool() bool { return true }

// Decode reads --init, --init=VALUE and PHASE_SHIM_INIT=VALUE.
func (m *InitMode) Decode(ctx *kong.DecodeContext) error {
	if ctx.Scan.Peek().Type != kong.FlagValueToken {
		*m = InitOn
		return nil
	}
	tok, err := ctx.Scan.PopValue("init")
	if err != nil {
		return err
	}
	switch v := tok.Value.(type) {
	case bool:
		*m = InitOff
		if v {
			*m = InitOn
		}
		return nil
	case string:
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on":
			*m = InitOn
		case "false", "0", "no", "off":
			*m = InitOff
		case "auto":
			*m = InitAuto
		default:
			return fmt.Errorf("want true, false or auto, got %q", v)
		}
		return nil
	}
	return fmt.Errorf("unexpected value %v", tok.Value)
}

// supervised reports whether run starts the command as a child.
func supervised(g *Globals) bool {
	return g.Init == InitOn || (g.Init == InitAuto && supervise.IsPID1())
}

// runSupervised starts the command as a supervised child and returns its
// exit status (128+n when signal n killed it). The info line has already
// been written: the child shares stderr, so nothing but errors follows.
func runSupervised(g *Globals, log *logger, path string, argv, envp []string) int {
	o := supervise.Options{KillTimeout: g.KillTimeout}
	if g.KillTimeout == 0 {
		o.KillTimeout = -1 // the flag's 0 means never; Options' zero means the default
	}
	if log.level >= levelDebug {
		o.Debugf = func(f string, a ...any) { log.Debugf("init: "+f, a...) }
	}
	code, err := supervise.Run(path, argv, envp, o)
	switch {
	case err == nil:
		return code
	case errors.Is(err, fs.ErrNotExist):
		log.Error(err.Error())
		return 127
	case errors.Is(err, supervise.ErrStart):
		log.Error(err.Error())
		return 126
	case errors.Is(err, supervise.ErrUnsupported):
		log.Error(err.Error())
		return 78
	}
	log.Error(err.Error())
	return 70
}
