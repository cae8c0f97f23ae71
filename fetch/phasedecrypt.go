package fetch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// bucketKey identifies one secrets request: an environment and a folder
// ("" = every folder). Each is fetched at most once per run.
type bucketKey struct{ envID, path string }

// bucket holds one secrets response. Names and values are decrypted on
// demand: the requested secrets eagerly and in parallel, the rest only when
// a reference needs them, so a tag filter or a reference into a large
// folder costs no more X25519 operations than necessary.
type bucket struct {
	app     *apiApp
	env     *apiEnv
	kp      *envKeyPair
	path    string      // "" when every folder was fetched
	secrets []apiSecret // static
	dynamic []apiSecret
	keys    []string
	keyDone []bool
	vals    []string
	valDone []bool
}

func (s *session) fetchBucket(ctx context.Context, app *apiApp, env *apiEnv, path string, dynamic bool) (*bucket, error) {
	k := bucketKey{env.ID, path}
	if b, ok := s.buckets[k]; ok {
		return b, nil
	}
	kp, err := s.envKeyPairFor(app, env)
	if err != nil {
		return nil, err
	}
	body, err := s.api.get(ctx, "/service/secrets/", s.secretsHeaders(env, path, dynamic), "secrets", dynamic)
	if err != nil {
		return nil, err
	}
	list, err := decodeSecretsResponse(body, s.userToken)
	if err != nil {
		return nil, err
	}
	b := &bucket{app: app, env: env, kp: kp, path: path}
	for _, sec := range list {
		if sec.Dynamic {
			b.dynamic = append(b.dynamic, sec)
			continue
		}
		if sec.Path == "" {
			// Old servers omit it; the request's folder is the answer.
			sec.Path = path
			if sec.Path == "" {
				sec.Path = "/"
			}
		}
		sec.Path = normalizePath(sec.Path)
		if path != "" && sec.Path != path {
			// The server filters by the Path header; a server that ignores
			// it must not widen what the command receives.
			continue
		}
		b.secrets = append(b.secrets, sec)
	}
	n := len(b.secrets)
	b.keys, b.keyDone = make([]string, n), make([]bool, n)
	b.vals, b.valDone = make([]string, n), make([]bool, n)
	s.buckets[k] = b
	s.debugf("phase: environment %q folder %q: %d secrets, %d dynamic", env.Name, displayPath(path), n, len(b.dynamic))
	return b, nil
}

func displayPath(p string) string {
	if p == "" {
		return "(all)"
	}
	return p
}

// selected is one requested secret, in response order.
type selected struct {
	idx              int
	key, value, path string
}

// decryptSelected decrypts the names and values of the secrets that pass
// the tag filter. Comments are never decrypted: nothing uses them.
func (s *session) decryptSelected(b *bucket) ([]selected, error) {
	var out []selected
	var jobs []decryptJob
	for i, sec := range b.secrets {
		if !s.tags.keep(sec.Tags) {
			continue
		}
		out = append(out, selected{idx: i, path: sec.Path})
		jobs = append(jobs, b.keyJob(i), b.valueJob(i))
	}
	if err := decryptParallel(jobs, b.kp); err != nil {
		return nil, err
	}
	for j := range out {
		i := out[j].idx
		b.keyDone[i], b.valDone[i] = true, true
		out[j].key, out[j].value = b.keys[i], b.vals[i]
	}
	return out, nil
}

func (b *bucket) keyJob(i int) decryptJob {
	return decryptJob{ct: b.secrets[i].Key, dst: &b.keys[i], id: b.secrets[i].ID, field: "name"}
}

func (b *bucket) valueJob(i int) decryptJob {
	field := "value"
	if b.secrets[i].override != nil {
		field = "personal override value"
	}
	// Phase accepts an empty value field (no ciphertext) on write: it is an
	// empty value, not a decryption failure.
	return decryptJob{ct: b.secrets[i].Value, dst: &b.vals[i], id: b.secrets[i].ID, field: field, emptyOK: true}
}

// ensureKeys decrypts every name of the bucket not yet known.
func (b *bucket) ensureKeys() error {
	var jobs []decryptJob
	var idx []int
	for i := range b.secrets {
		if !b.keyDone[i] {
			jobs = append(jobs, b.keyJob(i))
			idx = append(idx, i)
		}
	}
	if err := decryptParallel(jobs, b.kp); err != nil {
		return err
	}
	for _, i := range idx {
		b.keyDone[i] = true
	}
	return nil
}

// find returns the index of key in folder path, or -1.
func (b *bucket) find(path, key string) (int, error) {
	if err := b.ensureKeys(); err != nil {
		return -1, err
	}
	for i, sec := range b.secrets {
		if sec.Path == path && b.keys[i] == key {
			return i, nil
		}
	}
	return -1, nil
}

func (b *bucket) value(i int) (string, error) {
	if !b.valDone[i] {
		if err := decryptParallel([]decryptJob{b.valueJob(i)}, b.kp); err != nil {
			return "", err
		}
		b.valDone[i] = true
	}
	return b.vals[i], nil
}

// decryptDynamic turns leased dynamic secrets into key/value pairs. A key
// without a credential (no lease, or a lease that lacks it) is left out with
// a warning rather than injected empty.
func (s *session) decryptDynamic(b *bucket) ([]Secret, error) {
	if len(b.dynamic) == 0 {
		return nil, nil
	}
	type dyn struct {
		names      []string
		credK      []string
		credV      []string
		label, src string
	}
	ds := make([]dyn, len(b.dynamic))
	var jobs []decryptJob
	for i, d := range b.dynamic {
		ds[i].names = make([]string, len(d.KeyMap))
		ds[i].credK = make([]string, len(d.Creds))
		ds[i].credV = make([]string, len(d.Creds))
		for j, ct := range d.KeyMap {
			jobs = append(jobs, decryptJob{ct: ct, dst: &ds[i].names[j], id: d.ID, field: "dynamic key name"})
		}
		for j, c := range d.Creds {
			jobs = append(jobs,
				decryptJob{ct: c[0], dst: &ds[i].credK[j], id: d.ID, field: "lease credential name"},
				decryptJob{ct: c[1], dst: &ds[i].credV[j], id: d.ID, field: "lease credential value"})
		}
		p := d.Path
		if p == "" {
			p = "/"
		}
		ds[i].src = "phase:" + normalizePath(p)
		ds[i].label = d.Name
		if ds[i].label == "" {
			ds[i].label = "dynamic secret " + safeID(d.ID)
		}
	}
	if err := decryptParallel(jobs, b.kp); err != nil {
		return nil, err
	}
	var out []Secret
	for i, d := range ds {
		creds := make(map[string]string, len(d.credK))
		for j := range d.credK {
			creds[d.credK[j]] = d.credV[j]
		}
		for _, name := range d.names {
			v, ok := creds[name]
			if !ok {
				why := "its lease has no credential for it"
				if !b.dynamic[i].HasLease {
					why = "no lease was issued"
				}
				s.warnings = append(s.warnings, fmt.Sprintf("dynamic secret %q: %s left out: %s", cleanText(d.label, 80), name, why))
				continue
			}
			out = append(out, Secret{Key: name, Value: v, Source: d.src})
		}
	}
	return out, nil
}

// decryptJob is one ciphertext and where its plaintext goes; dst pointers
// are distinct, so workers never write to the same place.
type decryptJob struct {
	ct      string
	dst     *string
	id      string // the secret's id, for the error message
	field   string
	emptyOK bool // "" is an empty plaintext rather than an error
}

// parallelThreshold: below this many ciphertexts the goroutines cost more
// than they save.
const parallelThreshold = 8

// decryptParallel opens every job with the environment key pair across
// GOMAXPROCS workers (each ciphertext is one X25519, ~50-100µs, with the
// environment's private key parsed once). GOMAXPROCS rather than NumCPU:
// Go sizes it to the container's CPU limit, so a 0.5-vCPU task on a
// 64-core host does not start 64 goroutines to share half a core.
// Output order is the jobs' order by construction. The first failure stops
// the remaining work; the error names the secret's id and the field, never
// any plaintext.
func decryptParallel(jobs []decryptJob, kp *envKeyPair) error {
	n := len(jobs)
	if n == 0 {
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	if n < parallelThreshold {
		workers = 1
	}
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	work := func() {
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			j := &jobs[i]
			if j.ct == "" && j.emptyOK {
				*j.dst = ""
				continue
			}
			pt, err := kp.dec.Decrypt(j.ct)
			if err != nil {
				errs[i] = err
				failed.Store(true)
				return
			}
			*j.dst = string(pt)
		}
	}
	if workers == 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: secret %s: %s: %v (possible tampering)", ErrProtocol, safeID(jobs[i].id), jobs[i].field, err)
		}
	}
	return nil
}
