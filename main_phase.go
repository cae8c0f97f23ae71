//go:build phase

package main

import (
	"context"
	"os"

	"github.com/phase-shim/phase-shim/fetch"
)

// fetchPhase reads the secrets of one Phase app/env/path.
func fetchPhase(ctx context.Context, g *Globals, token string, log *logger) (*phaseInfo, []fetch.Secret, error) {
	res, err := fetch.FetchPhase(ctx, phaseOptions(g, token, log))
	if err != nil {
		return nil, nil, err
	}
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	info := &phaseInfo{App: res.App, Env: res.Env, Path: res.Path, Requests: res.Requests, Attempts: res.Attempts}
	return info, res.Secrets, nil
}

func phaseOptions(g *Globals, token string, log *logger) fetch.PhaseOptions {
	wd, _ := os.Getwd() // only used to find .phase.json; "" disables that
	host := g.Host
	if host == "" {
		host = "https://console.phase.dev"
	}
	return fetch.PhaseOptions{
		Token:          token,
		Host:           host,
		AppID:          g.AppID,
		App:            g.App,
		Env:            g.Env,
		Path:           g.Path,
		AllPaths:       g.Path == "",
		Tags:           g.Tags,
		References:     g.References,
		CAFile:         g.CAFile,
		VerifySSL:      g.VerifySSL,
		UserAgent:      "phase-shim/" + version,
		GenerateLeases: g.GenerateLeases,
		LeaseTTL:       g.LeaseTTL,
		WorkDir:        wd,
		Debugf:         log.Debugf,
	}
}
