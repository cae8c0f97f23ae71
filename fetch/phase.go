package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
)

// Reference modes for PhaseOptions.References.
const (
	RefStrict  = "strict"  // an unresolvable reference is ErrData
	RefLenient = "lenient" // keep the ${…} text, add a warning
	RefRaw     = "raw"     // no resolution at all
)

// PhaseOptions configures one FetchPhase call.
type PhaseOptions struct {
	Token string // pss_service:v1/v2 or pss_user:v1; never logged
	// Host is the console origin, DefaultPhaseHost when empty. Endpoint paths
	// are appended to it as the Phase clients do; one trailing "/" is
	// trimmed, so "https://phase.example.com/" works.
	Host  string
	AppID string // exact application id; wins over App
	App   string // application name: exact (case-insensitive), else unique substring
	Env   string // environment name, same rules; .phase.json defaultEnv, else "Development"
	// Path is the folder to read ("/" when empty). AllPaths reads every
	// folder instead (the CLI's --path "").
	Path     string
	AllPaths bool
	// Tags keeps only secrets carrying at least one of these tags (exact
	// after normalisation: case-insensitive, "_" = " "). Dynamic secrets
	// carry no tags and are kept, as in Phase's clients.
	Tags       []string
	References string // RefStrict (default when empty), RefLenient, RefRaw
	CAFile     string // extra PEM roots
	// InsecureSkipVerify turns certificate checks off (--verify-ssl=false,
	// development only). The zero value verifies, so a caller that forgets
	// the field fails closed.
	InsecureSkipVerify bool
	UserAgent          string // full header value, e.g. "phase-shim/1.2.3"
	// GenerateLeases asks for dynamic secrets, which creates a lease per
	// dynamic secret on every call: off by default so a crash loop does not
	// mint credentials per restart. LeaseTTL (whole seconds) is sent when > 0.
	GenerateLeases bool
	LeaseTTL       time.Duration
	// WorkDir is where .phase.json is looked for when neither AppID nor App
	// is given; "" skips the lookup.
	WorkDir string
	Debugf  func(format string, args ...any) // may be nil; never given values

	// HTTPClient replaces NewHTTPClient(o) (tests, emulators). CAFile and
	// InsecureSkipVerify are then the client's business.
	HTTPClient *http.Client
	// Retry tuning; zero values pick the defaults (10s per attempt,
	// backoff base 250ms, cap 8s). The context's deadline bounds
	// everything, retries included; MaxAttempts 0 means no other bound
	// when the context has a deadline, and 8 attempts when it has none.
	MaxAttempts    int
	AttemptTimeout time.Duration
	RetryBase      time.Duration
	RetryMax       time.Duration
}

// PhaseResult is what FetchPhase found.
type PhaseResult struct {
	Secrets  []Secret // response order: static secrets, then dynamic ones
	App      string   // application name as Phase spells it
	Env      string   // environment name as Phase spells it
	Path     string   // normalised folder, "" when every folder was read
	Requests int      // API requests made (tokens, secrets, referenced folders)
	Attempts int      // HTTP attempts, retries included
	Warnings []string // never contain values
	// AppID and EnvID identify the context exactly.
	AppID, EnvID string
	// ConfigFile is the .phase.json that supplied the app, if any.
	ConfigFile string
	// FromCache and CacheAge are set by the last-known-good cache
	// (FetchPhaseCached); FetchPhase leaves them zero.
	FromCache bool
	CacheAge  time.Duration
}

// FetchPhase reads and decrypts the secrets of one Phase environment:
// GET /service/secrets/tokens/, then GET /service/secrets/ (plus one request
// per other folder or environment a reference points to). Errors wrap one of
// the fetch error classes and never contain a value or the token. On error
// the result is nil: there is no partial success.
func FetchPhase(ctx context.Context, o PhaseOptions) (*PhaseResult, error) {
	s, err := newSession(o)
	if err != nil {
		return nil, err
	}
	res, err := s.run(ctx)
	if err != nil {
		return nil, err
	}
	res.Requests, res.Attempts = s.api.requests, s.api.attempts
	return res, nil
}

// session is the state of one FetchPhase call.
type session struct {
	o         PhaseOptions
	tok       phasecrypto.Token
	api       *apiClient
	debugf    func(string, ...any)
	refMode   string
	tags      tagFilter
	tokens    *tokensResponse
	accPk     [32]byte
	accSk     [32]byte
	envKeys   map[string]*envKeyPair // by environment id
	buckets   map[bucketKey]*bucket
	warnings  []string
	userToken bool
}

type envKeyPair struct {
	pk, sk [32]byte
	dec    *phasecrypto.Decrypter
}

func newSession(o PhaseOptions) (*session, error) {
	tok, err := phasecrypto.ParseToken(o.Token)
	if err != nil {
		// The parser's message describes the shape only.
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	base, err := apiBase(o.Host)
	if err != nil {
		return nil, err
	}
	switch o.References {
	case "":
		o.References = RefStrict
	case RefStrict, RefLenient, RefRaw:
	default:
		return nil, fmt.Errorf("%w: references mode %q is not strict, lenient or raw", ErrConfig, o.References)
	}
	hc := o.HTTPClient
	if hc == nil {
		if hc, err = NewHTTPClient(o); err != nil {
			return nil, err
		}
	}
	debugf := o.Debugf
	if debugf == nil {
		debugf = func(string, ...any) {}
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "phase-shim/dev"
	}
	api := &apiClient{
		http: hc, base: base, auth: tok.AuthorizationHeader(), userAgent: ua, debugf: debugf,
		maxAttempts: o.MaxAttempts, attemptTimeout: o.AttemptTimeout,
		retryBase: o.RetryBase, retryMax: o.RetryMax, sleep: sleepCtx,
	}
	if api.attemptTimeout <= 0 {
		api.attemptTimeout = defaultAttemptTimeout
	}
	if api.retryBase <= 0 {
		api.retryBase = defaultRetryBase
	}
	if api.retryMax <= 0 {
		api.retryMax = defaultRetryMax
	}
	return &session{
		o: o, tok: tok, api: api, debugf: debugf, refMode: o.References,
		tags: newTagFilter(o.Tags), envKeys: map[string]*envKeyPair{},
		buckets: map[bucketKey]*bucket{}, userToken: tok.Prefix == "pss_user",
	}, nil
}

func (s *session) run(ctx context.Context) (*PhaseResult, error) {
	res := &PhaseResult{}
	appID, appName, envName := s.o.AppID, s.o.App, s.o.Env
	if appID == "" && appName == "" {
		cfg, err := FindPhaseConfig(s.o.WorkDir)
		if err != nil {
			return res, err
		}
		if cfg != nil {
			appID, appName = cfg.AppID, cfg.App
			if envName == "" {
				envName = cfg.DefaultEnv
			}
			res.ConfigFile = cfg.File
			s.debugf("phase: using %s", cfg.File)
		}
	}
	if envName == "" {
		envName = "Development"
	}

	body, err := s.api.get(ctx, "/service/secrets/tokens/", nil, "tokens", false)
	if err != nil {
		return res, err
	}
	if s.tokens, err = decodeTokensResponse(body); err != nil {
		return res, err
	}
	if err := s.unlockAccount(); err != nil {
		return res, err
	}
	app, err := selectApp(s.tokens.Apps, appID, appName)
	if err != nil {
		return res, err
	}
	env, err := selectEnv(app, envName)
	if err != nil {
		return res, err
	}
	res.App, res.AppID, res.Env, res.EnvID = app.Name, app.ID, env.Name, env.ID
	s.debugf("phase: application %q (%s), environment %q (%s)", app.Name, app.ID, env.Name, env.ID)

	path := "" // every folder
	if !s.o.AllPaths {
		path = normalizePath(s.o.Path) // "" → "/"
	}
	res.Path = path

	main, err := s.fetchBucket(ctx, app, env, path, s.o.GenerateLeases)
	if err != nil {
		return res, err
	}
	secrets, err := s.decryptSelected(main)
	if err != nil {
		return res, err
	}
	if s.tags != nil {
		s.debugf("phase: %d of %d secrets carry one of the requested tags", len(secrets), len(main.secrets))
	}
	if s.refMode != RefRaw {
		if err := s.resolveAll(ctx, main, secrets); err != nil {
			return res, err
		}
	}
	// Dynamic values are credentials minted by Phase, never references.
	dyn, err := s.decryptDynamic(main)
	if err != nil {
		return res, err
	}
	out := make([]Secret, 0, len(secrets)+len(dyn))
	for _, sel := range secrets {
		out = append(out, Secret{Key: sel.key, Value: sel.value, Source: "phase:" + sel.path})
	}
	res.Secrets = append(out, dyn...)
	res.Warnings = s.warnings
	return res, nil
}

// unlockAccount rebuilds the token holder's private key from the two
// shares. A share that does not open, or opens to the wrong key, means the
// token's key material does not belong to the account the server knows it
// by: a damaged token (a truncated copy) or a tampered answer.
func (s *session) unlockAccount() error {
	pk, sk, err := s.tok.AccountKeys(s.tokens.WrappedKeyShare)
	switch {
	case err == nil:
		s.accPk, s.accSk = pk, sk
		return nil
	case errors.Is(err, phasecrypto.ErrKeyMismatch):
		return fmt.Errorf("%w: the token's key shares do not combine into its public key (damaged token?)", ErrAuth)
	case errors.Is(err, phasecrypto.ErrCiphertext):
		return fmt.Errorf("%w: the server's key share does not open with this token (damaged token, or tampered response): %v", ErrAuth, err)
	default:
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
}

// envKeyPairFor decrypts an environment's seed with the account key and
// derives its key pair once per run. The derived public key must equal the
// one the server lists, or the two Phase client families (one uses the
// listed key, one the derived key) would disagree about the data.
func (s *session) envKeyPairFor(app *apiApp, env *apiEnv) (*envKeyPair, error) {
	if kp, ok := s.envKeys[env.ID]; ok {
		return kp, nil
	}
	if env.WrappedSeed == "" {
		return nil, fmt.Errorf("%w: environment %q of %q has no wrapped seed", ErrProtocol, cleanText(env.Name, 80), cleanText(app.Name, 80))
	}
	seedHex, err := phasecrypto.Decrypt(env.WrappedSeed, s.accSk, s.accPk)
	if err != nil {
		return nil, fmt.Errorf("%w: environment %q of %q: wrapped seed: %v (possible tampering)", ErrProtocol, cleanText(env.Name, 80), cleanText(app.Name, 80), err)
	}
	seed, ok := phasecrypto.DecodeHex32(seedHex)
	if !ok {
		return nil, fmt.Errorf("%w: environment %q of %q: seed is not 64 hex characters", ErrProtocol, cleanText(env.Name, 80), cleanText(app.Name, 80))
	}
	pk, sk := phasecrypto.SeedKeyPair(seed[:])
	if listed, ok := phasecrypto.DecodeHex32([]byte(env.IdentityKey)); !ok || listed != pk {
		return nil, fmt.Errorf("%w: environment %q of %q: listed public key does not match its seed", ErrProtocol, cleanText(env.Name, 80), cleanText(app.Name, 80))
	}
	dec, err := phasecrypto.NewDecrypter(sk, pk)
	if err != nil {
		return nil, fmt.Errorf("%w: environment %q of %q: %v", ErrProtocol, cleanText(env.Name, 80), cleanText(app.Name, 80), err)
	}
	kp := &envKeyPair{pk: pk, sk: sk, dec: dec}
	s.envKeys[env.ID] = kp
	return kp, nil
}

// secretsHeaders are the request headers of GET /service/secrets/. All
// parameters are headers in Phase's API, not query parameters.
func (s *session) secretsHeaders(env *apiEnv, path string, dynamic bool) [][2]string {
	h := [][2]string{{"Environment", env.ID}}
	if path != "" {
		h = append(h, [2]string{"Path", path})
	}
	if dynamic {
		h = append(h, [2]string{"dynamic", "true"}, [2]string{"lease", "true"})
		if s.o.LeaseTTL > 0 {
			secs := int64(s.o.LeaseTTL / time.Second)
			if secs < 1 {
				secs = 1
			}
			h = append(h, [2]string{"lease-ttl", strconv.FormatInt(secs, 10)})
		}
	}
	return h
}
