package awsiam

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/phase-shim/phase-shim/fetch"
	"github.com/phase-shim/phase-shim/fetch/awsiam/awstest"
	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

func TestLoopbackHostPort(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"127.9.8.7:1", "127.9.8.7:1", true},
		{"[::1]:443", "[::1]:443", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
		{"127.0.0.1:08080", "127.0.0.1:8080", true},
		{"169.254.170.2:80", "", false},
		{"10.0.0.1:80", "", false},
		{"0.0.0.0:80", "", false},
		{"[::]:80", "", false},
		{"localhost:80", "", false},
		{"evil.example:80", "", false},
		{"127.0.0.1", "", false},
		{"127.0.0.1:", "", false},
		{"127.0.0.1:0", "", false},
		{"127.0.0.1:65536", "", false},
		{"127.0.0.1:http", "", false},
		{"127.0.0.1:80/x", "", false},
		{"user@127.0.0.1:80", "", false},
		{"[::1%lo]:80", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := loopbackHostPort(tt.in)
		if d := cmp.Diff(struct {
			S  string
			OK bool
		}{tt.want, tt.ok}, struct {
			S  string
			OK bool
		}{got, ok}); d != "" {
			t.Errorf("loopbackHostPort(%q) (-want +got):\n%s", tt.in, d)
		}
	}
}

// FuzzLoopbackHostPort checks the property the override relies on: whatever
// is accepted is a loopback IP literal with a port, usable as a URL host.
func FuzzLoopbackHostPort(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:1", "10.0.0.1:80", "localhost:1", "[::1%eth0]:1", "127.0.0.1:80@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := loopbackHostPort(s)
		if !ok {
			return
		}
		h, port, err := net.SplitHostPort(got)
		if err != nil || port == "" || port == "0" {
			t.Fatalf("accepted %q as %q: not host:port", s, got)
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			t.Fatalf("accepted %q as %q: not a loopback IP", s, got)
		}
		if again, ok := loopbackHostPort(got); !ok || again != got {
			t.Fatalf("%q is not stable: %q, %v", got, again, ok)
		}
	})
}

// TestECSHostForTests drives Login through Options.ECSHostForTests: a
// loopback fake is used; any other value fails with ErrConfig before a
// single request (the dial guard of loopbackOnly would report one), and the
// fake sees nothing.
func TestECSHostForTests(t *testing.T) {
	loopbackOnly(t)
	s := emulator(t)
	s.EnableAWSIAM(phasetest.AWSIAM{App: "shop", Principals: principals(), TrustedPrincipals: trustAll})
	ecs := awstest.NewContainer(t, fakeECSPath, "", ecsCreds)

	login := func(t *testing.T, override string) (string, error) {
		var d debugLog
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, provider, err := Login(ctx, Options{
			ServiceAccountID: s.AccountID("shop", phasetest.ServiceV2),
			Host:             s.URL(),
			HTTPClient:       awstest.LoopbackClient(t),
			Getenv:           envMap(map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": fakeECSPath}),
			Debugf:           d.debugf,
			ECSHostForTests:  override,
		})
		d.check(t, "")
		return provider, err
	}

	t.Run("loopback", func(t *testing.T) {
		before := ecs.Requests()
		provider, err := login(t, ecs.HostPort())
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if provider != ProviderECS || ecs.Requests() != before+1 {
			t.Errorf("provider %s, fake requests %d, want %s and 1", provider, ecs.Requests()-before, ProviderECS)
		}
	})
	t.Run("unset", func(t *testing.T) {
		// The package's address stays in force: a closed loopback port here.
		before := ecs.Requests()
		if _, err := login(t, ""); !errors.Is(err, fetch.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("err = %v, want unavailable at the package's address", err)
		}
		if ecs.Requests() != before {
			t.Errorf("the fake got %d requests without the override", ecs.Requests()-before)
		}
	})
	for _, bad := range []string{"169.254.170.2:80", "10.1.2.3:" + strings.Split(ecs.HostPort(), ":")[1], "localhost:" + strings.Split(ecs.HostPort(), ":")[1]} {
		t.Run(bad, func(t *testing.T) {
			before := ecs.Requests()
			_, err := login(t, bad)
			if !errors.Is(err, fetch.ErrConfig) || !strings.Contains(err.Error(), "not a loopback IP:port") {
				t.Errorf("err = %v, want a config error naming the rule", err)
			}
			if ecs.Requests() != before {
				t.Errorf("the fake got %d requests through a refused override", ecs.Requests()-before)
			}
		})
	}
}
