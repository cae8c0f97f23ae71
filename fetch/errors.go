package fetch

import "errors"

// Error classes. Every error this package returns wraps exactly one of them
// (fmt.Errorf("%w: …", ErrX)), so main can choose the exit code with
// errors.Is. Messages never contain a secret value or a token.
var (
	// ErrData: a file that cannot be parsed, an unresolvable reference (exit 65).
	ErrData = errors.New("bad data")
	// ErrUnavailable: network failure, timeout, 5xx or 429 after retries (exit 69).
	ErrUnavailable = errors.New("phase unavailable")
	// ErrProtocol: an unexpected response or a ciphertext that fails to
	// authenticate: possible tampering (exit 76).
	ErrProtocol = errors.New("protocol error")
	// ErrAuth: the token is malformed or was rejected (exit 77).
	ErrAuth = errors.New("token rejected")
	// ErrConfig: no source, unknown app or environment, bad .phase.json (exit 78).
	ErrConfig = errors.New("configuration error")
)
