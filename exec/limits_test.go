package exec

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// kv returns "NAME=xxx…" whose length plus its NUL is exactly size bytes.
func kv(name string, size int) string {
	return name + "=" + strings.Repeat("x", size-len(name)-2)
}

func TestCheckLimitsPerString(t *testing.T) {
	const max = 131072
	for _, tc := range []struct {
		name   string
		argv   []string
		envp   []string
		ok     bool
		errHas []string
	}{
		{name: "empty", ok: true},
		{name: "exactly 131072 with its NUL", envp: []string{kv("BIG", max)}, ok: true},
		{name: "131073 with its NUL", envp: []string{"A=1", kv("BIG", max+1)}, errHas: []string{`"BIG" (131073 bytes)`, "131072 bytes per KEY=VALUE"}},
		{
			name:   "several too long: the biggest three, biggest first",
			envp:   []string{kv("S1", max+1), kv("S4", max+4), kv("S2", max+2), kv("S3", max+3), "OK=1"},
			errHas: []string{`"S4" (131076 bytes), "S3" (131075 bytes), "S2" (131074 bytes) over`},
		},
		{name: "an argument at the limit", argv: []string{"cmd", strings.Repeat("a", max-1)}, ok: true},
		{name: "an argument over the limit", argv: []string{"cmd", strings.Repeat("a", max)}, errHas: []string{"argument 1 (131073 bytes)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLimits("", tc.argv, tc.envp, max, 64<<20)
			if tc.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error = %v, want ErrTooLarge", err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "xxxx") || strings.Contains(err.Error(), "aaaa") {
				t.Error("error contains a value")
			}
		})
	}
}

func TestCheckLimitsTotal(t *testing.T) {
	argv := []string{"node", "index.js"}               // 5 + 9 bytes
	envp := []string{"A=12345", kv("B", 100), "C=123"} // 8 + 100 + 6 bytes
	need := 5 + 9 + 8 + 100 + 6 + 5*ptrSize
	if err := checkLimits("", argv, envp, 131072, need); err != nil {
		t.Fatalf("exactly at the budget: %v", err)
	}
	err := checkLimits("", argv, envp, 131072, need-1)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: error = %v, want ErrTooLarge", err)
	}
	for _, s := range []string{`"B" (100 bytes), "A" (8 bytes), "C" (6 bytes)`, "need " + strconv.Itoa(need), "limit is " + strconv.Itoa(need-1)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	// The file name counts too, as the kernel copies it onto the stack.
	if err := checkLimits("/usr/bin/node", argv, envp, 131072, need); !errors.Is(err, ErrTooLarge) {
		t.Errorf("with a path: error = %v, want ErrTooLarge", err)
	}
	// An empty argv still costs one pointer.
	if err := checkLimits("", nil, nil, 131072, ptrSize-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("empty argv: error = %v, want ErrTooLarge", err)
	}
}

func TestLiveLimits(t *testing.T) {
	if os.Getpagesize() == 4096 && MaxArgStrlen() != 131072 {
		t.Errorf("MaxArgStrlen = %d with 4 KiB pages", MaxArgStrlen())
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		t.Fatal(err)
	}
	want := uint64(6 << 20)
	if rl.Cur/4 < want {
		want = max(rl.Cur/4, uint64(32*os.Getpagesize()))
	}
	if got := ArgMax(); uint64(got) != want {
		t.Errorf("ArgMax = %d, want %d for a stack limit of %d", got, want, rl.Cur)
	}
	if ArgMax() < 4*MaxArgStrlen() {
		t.Skipf("stack limit too small (ARG_MAX %d) for the boundary check", ArgMax())
	}
	if err := CheckLimits([]string{"x"}, []string{kv("BIG", MaxArgStrlen())}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if err := CheckLimits([]string{"x"}, []string{kv("BIG", MaxArgStrlen()+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if err := CheckLimits([]string{"x"}, []string{kv("A", 100000), kv("B", 100000), kv("C", 100000), kv("D", 100000)}); err != nil && ArgMax() > 500000 {
		t.Errorf("400 kB within a %d budget: %v", ArgMax(), err)
	}
}
