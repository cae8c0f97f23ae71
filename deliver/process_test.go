package deliver

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	shimexec "github.com/phase-shim/phase-shim/exec"
)

// The child half of TestCommandReadsFiles: print the file named by the
// variable in DELIVER_TEST_READ, as an app would read KEY_FILE.
func TestMain(m *testing.M) {
	if name := os.Getenv("DELIVER_TEST_READ"); name != "" {
		b, err := os.ReadFile(os.Getenv(name))
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		os.Stdout.Write(b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCommandReadsFiles: values the environment cannot carry reach a real
// child process byte-exact through KEY_FILE, using the envp the shim would
// hand to execve.
func TestCommandReadsFiles(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []shimexec.Var{
		{Name: "BLOB", Value: "\x00leading\x00and trailing NUL\x00", Source: "phase:/"},
		{Name: "CHAIN_PEM", Value: pem1MiB(t), Source: "phase:/"},
		{Name: "PLAIN", Value: "stays-in-env", Source: "phase:/"},
	}
	// Without files neither value could be exec'd.
	if envp, _, err := shimexec.BuildEnv(secrets[:1], shimexec.EnvOptions{}); err == nil {
		t.Fatalf("NUL value accepted by BuildEnv (%d entries)", len(envp))
	} else if !strings.Contains(err.Error(), "--file BLOB") {
		t.Errorf("BuildEnv error %q does not suggest --file BLOB", err)
	}
	if envp, _, err := shimexec.BuildEnv(secrets[1:2], shimexec.EnvOptions{}); err == nil {
		if err := shimexec.CheckLimits([]string{self}, envp); err == nil {
			t.Fatal("1 MiB value passed CheckLimits")
		}
	}

	d, err := Plan(secrets, Options{Patterns: []string{"BLOB", "*_PEM"}, Dir: filepath.Join(t.TempDir(), "s")})
	wantErr(t, err, nil)
	wantErr(t, d.Write(), nil)
	for _, tc := range []struct{ name, value string }{
		{"BLOB_FILE", secrets[0].Value},
		{"CHAIN_PEM_FILE", secrets[1].Value},
	} {
		envp, _, err := shimexec.BuildEnv(d.Vars, shimexec.EnvOptions{Environ: []string{"DELIVER_TEST_READ=" + tc.name}})
		wantErr(t, err, nil)
		wantErr(t, shimexec.CheckLimits([]string{self}, envp), nil)
		cmd := osexec.Command(self, "-test.run=^$")
		cmd.Env = envp
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: child failed: %v: %s", tc.name, err, stderr.String())
		}
		sameValue(t, tc.name, out, []byte(tc.value))
	}
}
