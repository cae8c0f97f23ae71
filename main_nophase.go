//go:build !phase

package main

import (
	"context"
	"fmt"

	"github.com/phase-shim/phase-shim/fetch"
)

// fetchPhase stands in until the Phase client lands (build tag "phase").
func fetchPhase(ctx context.Context, g *Globals, token string, log *logger) (*phaseInfo, []fetch.Secret, error) {
	return nil, nil, fmt.Errorf("%w: this build has no Phase client yet", fetch.ErrConfig)
}
