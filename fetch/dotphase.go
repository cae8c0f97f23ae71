package fetch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PhaseConfigFile is the per-project file `phase init` writes.
const PhaseConfigFile = ".phase.json"

// phaseConfigParentDepth is how many parent directories are searched when a
// parent's .phase.json opts in with monorepoSupport, as the Phase CLI does.
const phaseConfigParentDepth = 8

// PhaseConfig is the part of .phase.json the shim uses.
type PhaseConfig struct {
	AppID           string `json:"appId"`
	App             string `json:"phaseApp"`
	DefaultEnv      string `json:"defaultEnv"`
	MonorepoSupport bool   `json:"monorepoSupport"`
	// File is where it was read from (for the report).
	File string `json:"-"`
}

// FindPhaseConfig looks for .phase.json in dir; failing that, in up to eight
// parents, where a file only counts if it sets "monorepoSupport": true (a
// stray config higher up must not silently pick an application). It returns
// nil, nil when there is none, and ErrConfig when dir's own file cannot be
// read or parsed. A parent's file that cannot be read or parsed is passed
// over: it does not show the opt-in, so it is not ours any more than a
// parent's valid file without monorepoSupport (someone else's checkout,
// an editor's half-written save).
func FindPhaseConfig(dir string) (*PhaseConfig, error) {
	if dir == "" {
		return nil, nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil
	}
	for depth := 0; depth <= phaseConfigParentDepth; depth++ {
		c, err := readPhaseConfig(filepath.Join(dir, PhaseConfigFile))
		if err != nil {
			if depth == 0 {
				return nil, err
			}
			c = nil
		}
		if c != nil && (depth == 0 || c.MonorepoSupport) {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return nil, nil
}

func readPhaseConfig(path string) (*PhaseConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) && isUnreadableParent(path) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	var c PhaseConfig
	if err := decodeJSON(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	c.File = path
	return &c, nil
}

// isUnreadableParent reports whether path lies in a directory we may not
// list; a .phase.json there cannot be ours, so it is skipped rather than
// failing a start (read-only root filesystems, other users' homes).
func isUnreadableParent(path string) bool {
	_, err := os.ReadDir(filepath.Dir(path))
	return err != nil
}
