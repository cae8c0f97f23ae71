package phasetest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// response is an answer before it is delivered, so faults can mangle the
// delivery of any answer the same way.
type response struct {
	status int
	header http.Header
	body   []byte
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own obj values get here; a failure is a bug in this package.
		panic("phasetest: marshal: " + err.Error())
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return response{status: status, header: h, body: b}
}

func errorResponse(status int, msg string) response {
	r := jsonResponse(status, obj{{"error", msg}})
	if status == http.StatusUnauthorized {
		r.header.Set("WWW-Authenticate", "Bearer")
	}
	return r
}

func emptyOK() response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return response{status: http.StatusOK, header: h}
}

func classify(p string) (Endpoint, bool) {
	// The console strips one leading /service segment before routing.
	if rest, ok := strings.CutPrefix(p, "/service"); ok && strings.HasPrefix(rest, "/") {
		p = rest
	}
	switch p {
	case "/secrets/tokens/", "/secrets/tokens":
		return EndpointTokens, true
	case "/secrets/", "/secrets":
		return EndpointSecrets, true
	}
	return EndpointOther, false
}

// ServeHTTP counts, rate-limits, injects faults, and answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, _ := classify(r.URL.Path)
	s.ctr.count(ep, r.Method)
	s.log.add(r, ep)
	if wait, limited := s.faults.take(); limited {
		s.ctr.limited.Add(1)
		resp := errorResponse(http.StatusTooManyRequests,
			fmt.Sprintf("Request was throttled. Expected available in %d seconds.", wait))
		resp.header.Set("Retry-After", strconv.Itoa(wait))
		s.deliver(w, r, resp, Fault{}, false)
		return
	}
	f, faulted := s.faults.next(ep)
	if faulted {
		s.ctr.faulted.Add(1)
	}
	var resp response
	switch {
	case faulted && f.Kind == FaultStatus:
		resp = errorResponse(f.Status, statusMessage(f.Status))
		if f.RetryAfter != "" {
			resp.header.Set("Retry-After", f.RetryAfter)
		}
	case faulted && f.Kind == FaultWrongContentType:
		resp = response{status: http.StatusOK, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			body: []byte("<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head><body><h1>Welcome!</h1></body></html>\n")}
	case faulted && f.Kind == FaultGarbageJSON:
		resp = response{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}},
			body: []byte("\x00\xff{\"wrapped_key_share\": [nul")}
	case faulted && f.Kind == FaultWrongShape:
		resp = jsonResponse(http.StatusOK, obj{{"apps", "none"}, {"secrets", 42}})
	default:
		resp = s.route(r, ep)
	}
	s.deliver(w, r, resp, f, faulted)
}

func statusMessage(status int) string {
	switch status {
	case http.StatusInternalServerError:
		return "Internal server error."
	case http.StatusTooManyRequests:
		return "Request was throttled."
	case http.StatusUnauthorized, http.StatusForbidden:
		return "Token expired or deleted"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "error"
}

func (s *Server) route(r *http.Request, ep Endpoint) response {
	switch ep {
	case EndpointTokens:
		return s.handleTokens(r)
	case EndpointSecrets:
		return s.handleSecrets(r)
	}
	s.mu.Lock()
	extra := s.extra
	hasExtra := s.extraN > 0
	s.mu.Unlock()
	if hasExtra {
		if _, pattern := extra.Handler(r); pattern != "" {
			rec := httptest.NewRecorder()
			extra.ServeHTTP(rec, r)
			return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		}
	}
	return errorResponse(http.StatusNotFound, "Not found.")
}

// deliver writes resp, applying latency and the delivery faults.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, resp response, f Fault, faulted bool) {
	latH, latB := s.faults.latency()
	if faulted && f.Kind == FaultSlowHeaders {
		latH += f.Delay
	}
	if faulted && f.Kind == FaultSlowBody {
		latB += f.Delay
	}
	if latH > 0 && !s.sleep(r, latH) {
		return
	}
	body := resp.body
	if faulted && f.Kind == FaultTruncate {
		body = body[:len(body)/2]
	}
	if faulted && f.Kind == FaultReset {
		s.reset(w, resp)
		return
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.status)
	if latB > 0 && len(body) > 1 {
		half := len(body) / 2
		_, _ = w.Write(body[:half])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if !s.sleep(r, latB) {
			return
		}
		body = body[half:]
	}
	_, _ = w.Write(body)
}

// reset announces the whole body and closes the connection half-way.
func (s *Server) reset(w http.ResponseWriter, resp response) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	writeRaw(buf, resp)
	_ = buf.Flush()
}

func writeRaw(buf *bufio.ReadWriter, resp response) {
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
	for k, vs := range resp.header {
		for _, v := range vs {
			fmt.Fprintf(buf, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n", len(resp.body))
	_, _ = buf.Write(resp.body[:len(resp.body)/2])
}

// sleep waits d unless the client goes away or the server closes.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

// authenticate parses "Bearer <Type> <token>" like the console does.
// ok=false with malformed=true means the header was unusable.
func (s *Server) lookupToken(h string) (t *token, malformed bool) {
	parts := strings.Split(h, " ")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "bearer") || parts[1] == "" || parts[2] == "" {
		return nil, true
	}
	switch parts[1] {
	case "User", "Service", "ServiceAccount":
	default:
		return nil, true
	}
	t = s.tokens[parts[1]+" "+parts[2]]
	if t == nil || t.revoked || t.acct.expired || (!t.expires.IsZero() && time.Now().After(t.expires)) {
		return nil, false
	}
	return t, false
}

func (s *Server) handleTokens(r *http.Request) response {
	if r.Method != http.MethodGet {
		return errorResponse(http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
	}
	h, present := r.Header["Authorization"]
	if !present || len(h) == 0 {
		return errorResponse(http.StatusInternalServerError, "Internal server error.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, _ := s.lookupToken(h[0])
	if t == nil {
		return errorResponse(http.StatusForbidden, "Token expired or deleted")
	}
	return jsonResponse(http.StatusOK, s.tokensBody(t))
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func (s *Server) tokensBody(t *token) obj {
	a := t.acct
	var n namer // the tokens view never honours X-Use-Camel-Case
	body := obj{{"wrapped_key_share", t.wrapped}}
	switch a.kind {
	case User:
		body = append(body, field{"user_id", a.memberID}, field{"offline_enabled", false})
	case ServiceV2:
		body = append(body, field{"account_id", a.id}, field{"offline_enabled", false})
	}
	body = append(body, field{"organisation", obj{{"id", s.orgID}, {"name", s.orgName}}})
	apps := []obj{}
	for _, ap := range s.apps {
		var keys []obj
		for _, g := range a.grants {
			if g.env.app != ap {
				continue
			}
			e := g.env
			var user, sa any
			if a.kind == User {
				user = a.memberID
			}
			if a.kind == ServiceV2 {
				sa = a.id
			}
			keys = append(keys, n.o(
				"id", g.id,
				"environment", n.o("id", e.id, "name", e.name, "env_type", e.typ, "index", e.index,
					"created_at", ts(e.created), "updated_at", ts(e.created)),
				"paths", nil,
				"identity_key", hex.EncodeToString(e.pk[:]),
				"wrapped_seed", g.wrappedSeed,
				"wrapped_salt", g.wrappedSalt,
				"created_at", ts(g.created), "updated_at", ts(g.created), "deleted_at", nil,
				"user", user, "service_account", sa))
		}
		if keys != nil {
			apps = append(apps, n.o("id", ap.id, "name", ap.name, "encryption", "E2E", "environment_keys", keys))
		}
	}
	return append(body, field{"apps", apps})
}

// header reads a request header the way Django does: "_" may stand for "-".
func header(r *http.Request, name string) (string, bool) {
	if v, ok := r.Header[http.CanonicalHeaderKey(name)]; ok && len(v) > 0 {
		return v[0], true
	}
	alt := strings.ReplaceAll(name, "-", "_")
	for k, v := range r.Header {
		if strings.EqualFold(k, alt) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

func (s *Server) handleSecrets(r *http.Request) response {
	h, present := r.Header["Authorization"]
	if !present || len(h) == 0 || h[0] == "" {
		return errorResponse(http.StatusUnauthorized, "Authentication credentials were not provided.")
	}
	// Read the body before taking the lock: a slow client must not stall others.
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			return errorResponse(http.StatusBadRequest, "Could not read the request body")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, malformed := s.lookupToken(h[0])
	if malformed {
		return errorResponse(http.StatusUnauthorized, "Invalid token")
	}
	if t == nil {
		return errorResponse(http.StatusUnauthorized, "Token expired or deleted")
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return errorResponse(http.StatusForbidden, "Unsupported HTTP method: "+r.Method)
	}
	e, errResp := s.contextEnv(r, t.acct)
	if e == nil {
		return errResp
	}
	switch r.Method {
	case http.MethodGet:
		return s.getSecrets(r, t.acct, e)
	case http.MethodPost:
		return s.createSecrets(body, t.acct, e)
	case http.MethodPut:
		return s.updateSecrets(body, t.acct, e)
	default:
		return s.deleteSecrets(body, e)
	}
}

// contextEnv resolves and authorises the environment of a request.
func (s *Server) contextEnv(r *http.Request, a *account) (*env, response) {
	envID, _ := header(r, "Environment")
	var e *env
	if envID != "" {
		e = s.envByID(envID)
	} else if appID, name := r.URL.Query().Get("app_id"), r.URL.Query().Get("env"); appID != "" && name != "" {
		for _, ap := range s.apps {
			if ap.id == appID {
				for _, cand := range ap.envs {
					if strings.EqualFold(cand.name, name) {
						e = cand
					}
				}
			}
		}
	} else if a.kind == ServiceV1 {
		return nil, errorResponse(http.StatusUnauthorized, "Service tokens require an environment context")
	} else {
		return nil, errorResponse(http.StatusForbidden, "Environment context required. Supply `app_id` and `env` as query parameters.")
	}
	if e == nil {
		return nil, errorResponse(http.StatusUnauthorized, "Environment not found")
	}
	for _, g := range a.grants {
		if g.env == e {
			return e, response{}
		}
	}
	switch a.kind {
	case ServiceV1:
		return nil, errorResponse(http.StatusUnauthorized, "Service token cannot access this environment")
	case ServiceV2:
		return nil, errorResponse(http.StatusUnauthorized, "Service account cannot access this environment")
	}
	return nil, errorResponse(http.StatusForbidden, "User cannot access this environment")
}

func (s *Server) envByID(id string) *env {
	for _, ap := range s.apps {
		for _, e := range ap.envs {
			if strings.EqualFold(e.id, id) {
				return e
			}
		}
	}
	return nil
}

func truthy(r *http.Request, name string) bool {
	v, ok := header(r, name)
	return ok && !strings.EqualFold(v, "false")
}

func (s *Server) getSecrets(r *http.Request, a *account, e *env) response {
	camel := namer(r.Header.Get("X-Use-Camel-Case") == "true")
	pathFilter, hasPath := header(r, "Path")
	if hasPath && pathFilter != "" {
		pathFilter = normalizePath(pathFilter)
	} else {
		hasPath = false
	}
	digest, _ := header(r, "KeyDigest")
	var tags []string
	if v, ok := header(r, "tags"); ok && v != "" {
		for _, t := range strings.Split(v, ",") {
			tags = append(tags, strings.TrimSpace(t))
		}
	}
	dynamic := truthy(r, "dynamic") || truthy(r, "include_dynamic")
	lease := truthy(r, "lease")
	leaseTTL := 0
	if v, ok := header(r, "lease-ttl"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errorResponse(http.StatusBadRequest, "Invalid lease_ttl: must be an integer")
		}
		leaseTTL = n
	}

	out := []obj{}
	for _, sec := range e.secrets {
		if sec.deleted || (hasPath && sec.path != pathFilter) || (digest != "" && sec.keyDigest != digest) {
			continue
		}
		if tags != nil && !anyTag(sec.tags, tags) {
			continue
		}
		out = append(out, s.secretObj(camel, sec, a, e))
	}
	if dynamic {
		for _, d := range e.dynamic {
			if hasPath && d.path != pathFilter {
				continue
			}
			if digest != "" && !d.hasDigest(digest) {
				continue
			}
			var leaseObj any
			if lease {
				l, resp, ok := s.createLease(camel, d, e, a, leaseTTL)
				if !ok {
					return resp
				}
				leaseObj = l
			}
			out = append(out, s.dynamicObj(camel, d, e, leaseObj))
		}
	}
	return jsonResponse(http.StatusOK, out)
}

func anyTag(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func (d *dynamicSecret) hasDigest(digest string) bool {
	for _, k := range d.keys {
		if k.keyDigest == digest {
			return true
		}
	}
	return false
}

func (s *Server) folderID(e *env, p string) any {
	if p == "/" {
		return nil
	}
	k := e.id + p
	if id, ok := s.folders[k]; ok {
		return id
	}
	id := s.uuid()
	s.folders[k] = id
	return id
}

func (s *Server) secretObj(n namer, sec *secret, a *account, e *env) obj {
	value := sec.valueCT
	if sec.tampered {
		value = flipByte(value)
	}
	var ov any
	if a.kind == User && sec.overrides != nil {
		o := sec.overrides[a.id]
		if o == nil {
			o = sec.overrides[""]
		}
		if o != nil {
			ov = n.o("id", o.id, "value", o.valueCT, "is_active", o.active,
				"created_at", ts(o.created), "updated_at", ts(o.updated))
		}
	}
	tags := append([]string{}, sec.tags...)
	return n.o(
		"id", sec.id, "key", sec.keyCT, "value", value, "comment", sec.commentCT,
		"tags", tags, "override", ov, "type", sec.typ, "lifecycle", "static",
		"path", sec.path, "key_digest", sec.keyDigest, "version", sec.version,
		"created_at", ts(sec.created), "updated_at", ts(sec.updated),
		"environment", e.id, "folder", s.folderID(e, sec.path))
}

func (s *Server) dynamicObj(n namer, d *dynamicSecret, e *env, lease any) obj {
	keyMap := []obj{}
	for _, k := range d.keys {
		keyMap = append(keyMap, n.o("id", k.id, "key_name", k.keyCT, "key_digest", k.keyDigest))
	}
	return n.o("id", d.id, "name", d.name, "type", "dynamic", "description", d.description,
		"environment", e.id, "folder", s.folderID(e, d.path), "path", d.path,
		"default_ttl", d.defaultTTL, "max_ttl", d.maxTTL, "provider", d.provider,
		"key_map", keyMap, "created_at", ts(d.created), "updated_at", ts(d.created),
		"deleted_at", nil, "lease", lease)
}

func (s *Server) createLease(n namer, d *dynamicSecret, e *env, a *account, ttl int) (obj, response, bool) {
	if ttl <= 0 {
		ttl = d.defaultTTL
	}
	if ttl > d.maxTTL {
		return nil, jsonResponse(http.StatusBadRequest, obj{
			{"error", "One or more dynamic secret leases could not be created"},
			{"failed_leases", []string{d.name}}, {"successful_leases", 0}}), false
	}
	num := s.leases.Add(1)
	creds := []obj{}
	for _, k := range d.keys {
		ct, err := s.encrypt(e, fmt.Sprintf("%s-%d", k.value, num))
		if err != nil {
			return nil, errorResponse(http.StatusInternalServerError, "Internal server error."), false
		}
		creds = append(creds, n.o("key", k.keyCT, "value", ct))
	}
	now := s.now()
	return n.o("id", s.uuid(), "name", fmt.Sprintf("%s-lease-%d", d.name, num), "description", "",
		"secret", d.id, "ttl", ttl, "status", "active", "owner", a.id, "credentials", creds,
		"created_at", ts(now), "renewed_at", nil, "expires_at", ts(now.Add(time.Duration(ttl)*time.Second)),
		"revoked_at", nil, "deleted_at", nil), response{}, true
}

// flipByte flips one byte of a ph:v1 blob and re-encodes it, so the
// string still parses and only authentication fails.
func flipByte(ct string) string {
	i := strings.LastIndexByte(ct, ':')
	if i < 0 {
		return ct + "x"
	}
	blob, err := base64.StdEncoding.DecodeString(ct[i+1:])
	if err != nil || len(blob) == 0 {
		return ct + "x"
	}
	blob[0] ^= 0x01
	return ct[:i+1] + base64.StdEncoding.EncodeToString(blob)
}

var ciphertextRE = regexp.MustCompile(`^ph:v1:[0-9a-fA-F]{64}:.+`)

// decodeWriteBody applies the console's checks on a write body in order:
// empty, not JSON, not an object, then the secrets list.
func decodeWriteBody(body []byte) ([]json.RawMessage, *response) {
	fail := func(msg string) ([]json.RawMessage, *response) {
		r := errorResponse(http.StatusBadRequest, msg)
		return nil, &r
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fail("Request body is empty")
	}
	var top any
	if err := json.Unmarshal(body, &top); err != nil {
		return fail("Invalid JSON in request body")
	}
	m, ok := top.(map[string]any)
	if !ok {
		return fail("Request body must be a JSON object")
	}
	if _, ok := m["secrets"].([]any); !ok {
		return fail("'secrets' must be a list")
	}
	var parsed struct {
		Secrets []json.RawMessage `json:"secrets"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return fail("Invalid JSON in request body")
	}
	return parsed.Secrets, nil
}

// writeItem is one element of a POST or PUT body. Pointers tell "absent"
// from "empty".
type writeItem struct {
	ID        *string          `json:"id"`
	Key       *string          `json:"key"`
	KeyDigest *string          `json:"keyDigest"`
	Value     *string          `json:"value"`
	Comment   *string          `json:"comment"`
	Path      *string          `json:"path"`
	Tags      *[]string        `json:"tags"`
	Type      *string          `json:"type"`
	Override  *json.RawMessage `json:"override"`
}

type overrideItem struct {
	Value    *string `json:"value"`
	IsActive *bool   `json:"isActive"`
}

func badRequest(msg string) response { return errorResponse(http.StatusBadRequest, msg) }

func checkCiphertexts(it writeItem) (*overrideItem, *response) {
	for _, p := range []*string{it.Key, it.Value, it.Comment} {
		if p != nil && *p != "" && !ciphertextRE.MatchString(*p) {
			r := badRequest("Invalid ciphertext format")
			return nil, &r
		}
	}
	if it.Type != nil {
		switch *it.Type {
		case "secret", "sealed", "config":
		default:
			r := badRequest("Invalid secret type")
			return nil, &r
		}
	}
	if it.Tags != nil {
		for _, t := range *it.Tags {
			if len(strings.TrimSpace(t)) > 64 {
				r := badRequest("Tag names must be at most 64 characters")
				return nil, &r
			}
		}
	}
	if it.Override == nil || string(*it.Override) == "null" {
		return nil, nil
	}
	var ov overrideItem
	if err := json.Unmarshal(*it.Override, &ov); err != nil {
		r := badRequest("Invalid override")
		return nil, &r
	}
	if ov.Value != nil && *ov.Value != "" && !ciphertextRE.MatchString(*ov.Value) {
		r := badRequest("Invalid ciphertext format")
		return nil, &r
	}
	return &ov, nil
}

func cleanTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// duplicate reports whether a live secret other than except already uses
// digest at path (dynamic secrets' keys count too).
func (e *env) duplicate(path, digest string, except *secret) bool {
	for _, sec := range e.secrets {
		if sec != except && !sec.deleted && sec.path == path && sec.keyDigest == digest {
			return true
		}
	}
	for _, d := range e.dynamic {
		if d.path == path && d.hasDigest(digest) {
			return true
		}
	}
	return false
}

func (s *Server) createSecrets(body []byte, a *account, e *env) response {
	raw, fail := decodeWriteBody(body)
	if fail != nil {
		return *fail
	}
	now := s.now()
	var add []*secret
	for _, rm := range raw {
		var it writeItem
		if err := json.Unmarshal(rm, &it); err != nil {
			return badRequest("Invalid secret")
		}
		// The console indexes these keys directly: a missing one is a 500.
		if it.Key == nil || it.Value == nil || it.Comment == nil || it.KeyDigest == nil {
			return errorResponse(http.StatusInternalServerError, "Internal server error.")
		}
		ov, fail := checkCiphertexts(it)
		if fail != nil {
			return *fail
		}
		sec := &secret{id: s.uuid(), keyCT: *it.Key, keyDigest: *it.KeyDigest, valueCT: *it.Value,
			commentCT: *it.Comment, path: "/", typ: "secret", version: 1, created: now, updated: now, tags: []string{}}
		if it.Path != nil {
			sec.path = normalizePath(*it.Path)
		}
		if it.Type != nil {
			sec.typ = *it.Type
		}
		if it.Tags != nil {
			sec.tags = cleanTags(*it.Tags)
		}
		// Only existing secrets are checked: duplicates inside one request
		// pass (spec §13.1).
		if e.duplicate(sec.path, sec.keyDigest, nil) {
			return errorResponse(http.StatusConflict, "Duplicate secret found")
		}
		if ov != nil && ov.Value != nil && a.kind == User {
			sec.overrides = map[string]*override{a.id: {id: s.uuid(), valueCT: *ov.Value,
				active: ov.IsActive != nil && *ov.IsActive, created: now, updated: now}}
		}
		add = append(add, sec)
	}
	e.secrets = append(e.secrets, add...)
	return emptyOK()
}

func (s *Server) updateSecrets(body []byte, a *account, e *env) response {
	raw, fail := decodeWriteBody(body)
	if fail != nil {
		return *fail
	}
	type change struct {
		sec *secret
		it  writeItem
		ov  *overrideItem
	}
	var changes []change
	for _, rm := range raw {
		var it writeItem
		if err := json.Unmarshal(rm, &it); err != nil {
			return badRequest("Invalid secret")
		}
		if it.ID == nil {
			return badRequest("Secret id is required")
		}
		var sec *secret
		for _, c := range e.secrets {
			if c.id == *it.ID && !c.deleted {
				sec = c
			}
		}
		if sec == nil {
			return errorResponse(http.StatusNotFound, "Secret not found")
		}
		ov, fail := checkCiphertexts(it)
		if fail != nil {
			return *fail
		}
		if sec.typ == "sealed" && it.Type != nil && *it.Type != "sealed" {
			return badRequest("Sealed secrets cannot be changed to another type")
		}
		p, d := sec.path, sec.keyDigest
		if it.Path != nil {
			p = normalizePath(*it.Path)
		}
		if it.KeyDigest != nil {
			d = *it.KeyDigest
		}
		if e.duplicate(p, d, sec) {
			return errorResponse(http.StatusConflict, "Duplicate secret found")
		}
		changes = append(changes, change{sec, it, ov})
	}
	now := s.now()
	for _, c := range changes {
		sec, it := c.sec, c.it
		if it.Key != nil && *it.Key != "" {
			sec.keyCT = *it.Key
		}
		if it.KeyDigest != nil && *it.KeyDigest != "" {
			sec.keyDigest = *it.KeyDigest
		}
		if it.Value != nil && sec.typ != "sealed" {
			sec.valueCT = *it.Value
		}
		if it.Comment != nil {
			sec.commentCT = *it.Comment
		}
		if it.Path != nil {
			sec.path = normalizePath(*it.Path)
		}
		if it.Tags != nil {
			sec.tags = cleanTags(*it.Tags)
		}
		if it.Type != nil {
			sec.typ = *it.Type
		}
		if c.ov != nil && a.kind == User {
			if sec.overrides == nil {
				sec.overrides = map[string]*override{}
			}
			o := sec.overrides[a.id]
			if o == nil {
				o = &override{id: s.uuid(), created: now}
				if shared := sec.overrides[""]; shared != nil {
					*o = *shared
				}
				sec.overrides[a.id] = o
			}
			if c.ov.Value != nil {
				o.valueCT = *c.ov.Value
			}
			if c.ov.IsActive != nil {
				o.active = *c.ov.IsActive
			}
			o.updated = now
		}
		sec.version++
		sec.updated = now
	}
	return emptyOK()
}

func (s *Server) deleteSecrets(body []byte, e *env) response {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("Request body is empty")
	}
	var parsed struct {
		Secrets []string `json:"secrets"`
	}
	var top any
	if err := json.Unmarshal(body, &top); err != nil {
		return badRequest("Invalid JSON in request body")
	}
	if _, ok := top.(map[string]any); !ok {
		return badRequest("Request body must be a JSON object")
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return badRequest("'secrets' must be a list of ids")
	}
	for _, id := range parsed.Secrets {
		for _, sec := range e.secrets {
			if sec.id == id {
				sec.deleted = true
			}
		}
	}
	return emptyOK()
}
