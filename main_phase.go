package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/awsiam"
)

// fetchPhase reads the secrets of one Phase app/env/path, through the
// last-known-good cache when --cache-dir is set.
func fetchPhase(ctx context.Context, g *Globals, token string, useCache bool, log *logger) (*phaseInfo, []fetch.Secret, error) {
	o := phaseOptions(g, token, log)
	cache := fetch.Cache{Dir: g.CacheDir, MaxAge: g.CacheMaxAge, FallbackAfter: g.CacheFallbackAfter}
	if !useCache && cache.Dir != "" {
		log.Debug("--cache-dir is not used with an AWS IAM login")
		cache.Dir = ""
	}
	res, err := fetch.FetchPhaseCached(ctx, o, cache)
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

// awsLogin trades this machine's AWS IAM identity for a short-lived Phase
// token, kept in memory only: never logged, never in the command's
// environment, never cached.
func awsLogin(ctx context.Context, g *Globals, log *logger) (string, error) {
	// The Phase call of the login follows the same TLS and proxy rules.
	client, err := fetch.NewHTTPClient(phaseOptions(g, "", log))
	if err != nil {
		return "", err
	}
	tok, provider, err := awsiam.Login(ctx, awsiam.Options{
		ServiceAccountID: g.AWSIAMServiceAccountID,
		TTL:              g.AWSIAMTTL,
		STSEndpoint:      g.AWSSTSEndpoint,
		Host:             g.Host,
		HTTPClient:       client,
		Debugf:           log.Debugf,
		UserAgent:        "phase-shim/" + version,
		// Test-only, not a flag and not in the README: the ECS relative URI
		// always goes to the agent's link-local address, so the end-to-end
		// script (testdata/script/aws_iam.txtar) can only drive that
		// provider through the binary by moving it to a loopback fake.
		// awsiam refuses any non-loopback value (78) before a request.
		ECSHostForTests: os.Getenv("PHASE_SHIM_TEST_ECS_CREDENTIALS_HOST"),
	})
	if err != nil {
		return "", err
	}
	log.Debug("logged in to Phase with AWS IAM ("+provider+" credentials)", field{"aws_provider", provider})
	return tok, nil
}

// phaseOptions is the one place the command line becomes FetchPhase's
// options.
func phaseOptions(g *Globals, token string, log *logger) fetch.PhaseOptions {
	wd, err := os.Getwd() // only used to find .phase.json; "" skips that
	if err != nil {
		log.Debug(fmt.Sprintf("no working directory (%v): .phase.json is not looked for", err))
	}
	o := fetch.PhaseOptions{
		Token:              token,
		Host:               g.Host,
		AppID:              g.AppID,
		App:                g.App,
		Env:                g.Env,
		Path:               g.Path,
		AllPaths:           g.Path == "",
		Tags:               g.Tags,
		References:         g.References,
		CAFile:             g.CAFile,
		InsecureSkipVerify: !g.VerifySSL,
		UserAgent:          "phase-shim/" + version,
		GenerateLeases:     g.GenerateLeases,
		LeaseTTL:           g.LeaseTTL,
		WorkDir:            wd,
		Debugf:             log.Debugf,
	}
	// Test-only retry knobs (not flags, not documented for users): the
	// fleet benchmark's no-retry baseline and fast fault tests.
	if n, err := strconv.Atoi(os.Getenv("PHASE_SHIM_TEST_MAX_ATTEMPTS")); err == nil && n > 0 {
		o.MaxAttempts = n
	}
	if d, err := time.ParseDuration(os.Getenv("PHASE_SHIM_TEST_RETRY_BASE")); err == nil && d > 0 {
		o.RetryBase = d
	}
	return o
}
