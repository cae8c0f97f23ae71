package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

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

// parseInitMode reads the value of --init=VALUE or PHASE_SHIM_INIT.
func parseInitMode(v string) (InitMode, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return InitOn, nil
	case "false", "0", "no", "off":
		return InitOff, nil
	case "auto":
		return InitAuto, nil
	}
	return InitOff, fmt.Errorf("want true, false or auto, got %q", v)
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
