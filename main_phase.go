package main

import (
	"context"
	"fmt"
	"os"

	"github.com/phase-shim/phase-shim/fetch"
)

// fetchPhase reads the secrets of one Phase app/env/path, through the
// last-known-good cache when --cache-dir is set.
func fetchPhase(ctx context.Context, g *Globals, token string, log *logger) (*phaseInfo, []fetch.Secret, error) {
	o := phaseOptions(g, token, log)
	res, err := fetch.FetchPhaseCached(ctx, o, fetch.Cache{Dir: g.CacheDir, MaxAge: g.CacheMaxAge})
	if err != nil {
		return nil, nil, err
	}
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	if res.ConfigFile != "" {
		log.Debug("app from "+res.ConfigFile, field{"config_file", res.ConfigFile})
	}
	info := &phaseInfo{
		App: res.App, Env: res.Env, Path: res.Path,
		Requests: res.Requests, Attempts: res.Attempts,
		FromCache: res.FromCache, CacheAge: res.CacheAge,
	}
	return info, res.Secrets, nil
}

// phaseOptions is the one place the command line becomes FetchPhase's
// options.
func phaseOptions(g *Globals, token string, log *logger) fetch.PhaseOptions {
	wd, err := os.Getwd() // only used to find .phase.json; "" skips that
	if err != nil {
		log.Debug(fmt.Sprintf("no working directory (%v): .phase.json is not looked for", err))
	}
	return fetch.PhaseOptions{
		Token:          token,
		Host:           g.Host,
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
