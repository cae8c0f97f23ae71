package deliver

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/phase-shim/phase-shim/internal/secretdiff"
)

// sameValue compares a secret without ever printing it: only the key, the
// lengths and the offset of the first difference reach the failure message.
func sameValue(t *testing.T, key string, got, want []byte) {
	t.Helper()
	if d := secretdiff.Describe(string(got), string(want)); d != "" {
		t.Errorf("%s: %s", key, d)
	}
}

// noValueIn fails when an error message holds any of the secret values.
func noValueIn(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for i, v := range values {
		if len(v) >= 4 && strings.Contains(err.Error(), v) {
			t.Errorf("error message contains secret value #%d (%d bytes)", i, len(v))
		}
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want one wrapping %q", err, want)
	}
}

// requireRoot skips a test that needs root, unless the run demands it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("PHASE_SHIM_REQUIRE_ROOT") == "1" {
		t.Fatal("PHASE_SHIM_REQUIRE_ROOT=1 but not running as root")
	}
	t.Skip("needs root (chown to another uid)")
}

// setRunSecrets points the default directory's parent somewhere else for
// one test.
func setRunSecrets(t *testing.T, dir string) {
	old := runSecrets
	runSecrets = dir
	t.Cleanup(func() { runSecrets = old })
}
