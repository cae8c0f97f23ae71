// Package fetch gathers secrets from their sources: the Phase API (end-to-end
// encrypted, decrypted here) and local files (dotenv or JSON). It never prints
// and never exits; callers map its typed errors to exit codes.
package fetch

// Secret is one name/value pair as a source delivered it, before any name
// policy is applied. Value may hold any bytes; it must never be formatted into
// a log line or an error.
type Secret struct {
	Key    string
	Value  string
	Source string // human label of where it came from, e.g. "phase:/backend" or "file:.env"
}
