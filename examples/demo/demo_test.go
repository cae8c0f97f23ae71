package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the demo as a user would (it builds phase-shim itself
// unless PHASE_SHIM_BIN is set) and checks the story it tells.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"phase-shim: injected 7 secrets", "2 renamed",
		`SECRET_KEY_`, `my_key`,
		"TLS_PRIVATE_KEY          1679 bytes, 27 lines",
		"DB_DSN                   = DATABASE_URL",
		"PHASE_SERVICE_TOKEN: removed before exec",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q\n%s", want, text)
		}
	}
	if _, err := exec.LookPath("sh"); err == nil && !strings.Contains(text, "secrets intact. phase-shim delivered all of them.") {
		t.Errorf("no shell contrast\n%s", text)
	}
	if regexp.MustCompile(`pss_(service|user):v\d+:[0-9a-f]`).MatchString(text) {
		t.Errorf("the demo printed a token")
	}
}
