package fetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Phase's API answers snake_case by default and camelCase when asked (the
// Node SDK does); proxies and forks may do either. Every field is therefore
// read under both spellings, the snake_case one winning when both appear.

func pick(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// tokensResponse is what FetchPhase uses of GET /service/secrets/tokens/.
type tokensResponse struct {
	WrappedKeyShare string
	Apps            []apiApp
}

type apiApp struct {
	ID, Name string
	Envs     []apiEnv
}

type apiEnv struct {
	KeyID       string // environment_keys[].id
	ID, Name    string // environment.id, environment.name
	IdentityKey string // the environment's public key (not the account's)
	WrappedSeed string
}

type rawTokens struct {
	WrappedKeyShare  string   `json:"wrapped_key_share"`
	WrappedKeyShareC string   `json:"wrappedKeyShare"`
	Apps             []rawApp `json:"apps"`
}

type rawApp struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	EnvKeys  []rawEnvKey `json:"environment_keys"`
	EnvKeysC []rawEnvKey `json:"environmentKeys"`
}

type rawEnvKey struct {
	ID          string `json:"id"`
	Environment *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"environment"`
	IdentityKey  string `json:"identity_key"`
	IdentityKeyC string `json:"identityKey"`
	WrappedSeed  string `json:"wrapped_seed"`
	WrappedSeedC string `json:"wrappedSeed"`
}

// decodeTokensResponse checks the shape strictly: anything that is not what
// Phase sends is ErrProtocol, never a panic and never a partial result.
// Fields of environments are checked when one is used (a broken entry of an
// app we do not read must not stop us).
func decodeTokensResponse(body []byte) (*tokensResponse, error) {
	var raw rawTokens
	if err := decodeJSON(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: tokens response: %v", ErrProtocol, err)
	}
	t := &tokensResponse{WrappedKeyShare: pick(raw.WrappedKeyShare, raw.WrappedKeyShareC)}
	if t.WrappedKeyShare == "" {
		return nil, fmt.Errorf("%w: tokens response has no wrapped_key_share", ErrProtocol)
	}
	for i, a := range raw.Apps {
		if a.ID == "" {
			return nil, fmt.Errorf("%w: tokens response: app %d has no id", ErrProtocol, i)
		}
		app := apiApp{ID: a.ID, Name: a.Name}
		keys := a.EnvKeys
		if len(keys) == 0 {
			keys = a.EnvKeysC
		}
		for j, k := range keys {
			if k.Environment == nil || k.Environment.ID == "" {
				return nil, fmt.Errorf("%w: tokens response: app %s environment key %d has no environment id", ErrProtocol, safeID(a.ID), j)
			}
			app.Envs = append(app.Envs, apiEnv{
				KeyID:       k.ID,
				ID:          k.Environment.ID,
				Name:        k.Environment.Name,
				IdentityKey: pick(k.IdentityKey, k.IdentityKeyC),
				WrappedSeed: pick(k.WrappedSeed, k.WrappedSeedC),
			})
		}
		t.Apps = append(t.Apps, app)
	}
	return t, nil
}

// apiSecret is one element of GET /service/secrets/, static or dynamic.
type apiSecret struct {
	ID       string
	Key      string // ciphertext
	Value    string // ciphertext; the active personal override's when one applies
	Path     string
	Tags     []string
	Dynamic  bool
	Name     string       // dynamic: display name
	KeyMap   []string     // dynamic: key name ciphertexts
	Creds    [][2]string  // dynamic: lease credentials (key ct, value ct)
	HasLease bool         // dynamic
	override *rawOverride // kept for the user-token decision
}

type rawSecret struct {
	ID       json.RawMessage `json:"id"`
	Key      string          `json:"key"`
	Value    *string         `json:"value"` // nil: absent or null, which Phase never sends
	Path     string          `json:"path"`
	Tags     []rawTag        `json:"tags"`
	Type     string          `json:"type"`
	Override *rawOverride    `json:"override"`
	Name     string          `json:"name"`
	KeyMap   []rawKeyMap     `json:"key_map"`
	KeyMapC  []rawKeyMap     `json:"keyMap"`
	Lease    *struct {
		Credentials []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"credentials"`
	} `json:"lease"`
}

type rawOverride struct {
	Value     string `json:"value"`
	IsActive  *bool  `json:"is_active"`
	IsActiveC *bool  `json:"isActive"`
}

func (o *rawOverride) active() bool {
	if o == nil {
		return false
	}
	if o.IsActive != nil {
		return *o.IsActive
	}
	return o.IsActiveC != nil && *o.IsActiveC
}

type rawKeyMap struct {
	KeyName  string `json:"key_name"`
	KeyNameC string `json:"keyName"`
}

// rawTag accepts a tag name, or an object carrying one ({"name": …}) as
// some server versions serialise tags.
type rawTag string

func (t *rawTag) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = rawTag(s)
		return nil
	}
	var o struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.Name == nil {
		return fmt.Errorf("tag is neither a string nor an object with a name")
	}
	*t = rawTag(*o.Name)
	return nil
}

// decodeSecretsResponse decodes the list. userToken decides whether personal
// overrides are honoured (the server only sends them to users, but a
// misbehaving server must not switch a service token's values).
func decodeSecretsResponse(body []byte, userToken bool) ([]apiSecret, error) {
	var raw []rawSecret
	if err := decodeJSON(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: secrets response: %v", ErrProtocol, err)
	}
	if raw == nil {
		// "null" decodes without error, but Phase answers an empty folder
		// with []: starting with no secrets on a broken answer is not
		// failing closed.
		return nil, fmt.Errorf("%w: secrets response is null, not a list", ErrProtocol)
	}
	out := make([]apiSecret, 0, len(raw))
	for i, r := range raw {
		id, err := decodeID(r.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: secrets response: element %d: %v", ErrProtocol, i, err)
		}
		if id == "" {
			id = fmt.Sprintf("#%d", i)
		}
		s := apiSecret{ID: id, Path: r.Path}
		if r.Type == "dynamic" {
			s.Dynamic = true
			s.Name = r.Name
			km := r.KeyMap
			if len(km) == 0 {
				km = r.KeyMapC
			}
			for j, k := range km {
				ct := pick(k.KeyName, k.KeyNameC)
				if ct == "" {
					return nil, fmt.Errorf("%w: secrets response: dynamic secret %s: key map entry %d has no key name", ErrProtocol, safeID(id), j)
				}
				s.KeyMap = append(s.KeyMap, ct)
			}
			if r.Lease != nil {
				s.HasLease = true
				for _, c := range r.Lease.Credentials {
					s.Creds = append(s.Creds, [2]string{c.Key, c.Value})
				}
			}
			out = append(out, s)
			continue
		}
		if r.Key == "" {
			return nil, fmt.Errorf("%w: secrets response: secret %s has no key", ErrProtocol, safeID(id))
		}
		if r.Value == nil {
			// An empty value is "" (legal); a missing field is a damaged
			// answer, and injecting it as empty would hide that.
			return nil, fmt.Errorf("%w: secrets response: secret %s has no value field", ErrProtocol, safeID(id))
		}
		s.Key, s.Value = r.Key, *r.Value
		if userToken && r.Override.active() {
			s.Value = r.Override.Value
			s.override = r.Override
		}
		for _, t := range r.Tags {
			s.Tags = append(s.Tags, string(t))
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeID accepts the UUID string Phase sends, or a number from a
// look-alike server, for error messages only.
func decodeID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("id is neither a string nor a number")
}

// decodeJSON rejects trailing data after the value (a truncated-then-
// concatenated body, two answers in one) besides the usual type errors.
// json.Unmarshal does both on the body in place; a json.Decoder would copy
// the whole answer into its own buffer first (a second copy of every
// ciphertext at the peak of a large fetch).
func decodeJSON(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset >= int64(len(bytes.TrimRight(body, " \t\r\n"))) {
		return fmt.Errorf("JSON ends early (truncated body)")
	}
	if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
		return fmt.Errorf("trailing data after the JSON value (byte %d)", se.Offset)
	}
	return describeJSONError(err)
}

// describeJSONError keeps the position and the kind of error but never the
// offending bytes, which could be part of a value.
func describeJSONError(err error) error {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Errorf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		field := e.Field
		if field == "" {
			field = "top level"
		}
		// e.Value can carry the literal of a number ("number 1e999");
		// keep only its kind.
		kind, _, _ := strings.Cut(e.Value, " ")
		return fmt.Errorf("unexpected JSON shape: %s is a %s, want %s", field, kind, e.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("JSON ends early (truncated body)")
	}
	return fmt.Errorf("malformed JSON")
}

// safeID makes a server-chosen identifier fit for an error message.
func safeID(id string) string {
	return cleanText(id, 64)
}
