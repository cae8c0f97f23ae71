package exec

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's numbers (fs/exec.c, include/uapi/linux/limits.h):
// MAX_ARG_STRLEN is 32 pages per string, NUL included; ARG_MAX (32 pages) is
// the floor of the total budget and _STK_LIM*3/4 its ceiling; in between the
// budget is a quarter of the soft RLIMIT_STACK in force at execve time.
const (
	stkLim  = 8 << 20
	ptrSize = int(unsafe.Sizeof(uintptr(0)))
)

// MaxArgStrlen is the largest argv or envp string execve accepts, counting
// its terminating NUL: 131072 with 4 KiB pages.
func MaxArgStrlen() int { return 32 * os.Getpagesize() }

// ArgMax is the live budget for all argv and envp strings (with their NULs)
// plus one pointer per string, as execve(2) describes it. It reads
// RLIMIT_STACK now, because `ulimit -s` in the parent changes it.
func ArgMax() int {
	floor := 32 * os.Getpagesize()
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		return floor // the kernel never gives less
	}
	limit := uint64(stkLim / 4 * 3)
	if rl.Cur/4 < limit { // RLIM_INFINITY is the largest uint64, so this also covers it
		limit = rl.Cur / 4
	}
	if limit < uint64(floor) {
		limit = uint64(floor)
	}
	return int(limit)
}

// CheckLimits fails with ErrTooLarge when execve would fail with E2BIG, so the
// user gets the names of the variables responsible instead of a bare
// "argument list too long". Only names and sizes are reported, never values.
func CheckLimits(argv, envp []string) error {
	return checkLimits("", argv, envp, MaxArgStrlen(), ArgMax())
}

// CheckLimitsPath is CheckLimits that also counts path: the kernel copies the
// file name onto the new stack next to the strings (Exec uses it).
func CheckLimitsPath(path string, argv, envp []string) error {
	return checkLimits(path, argv, envp, MaxArgStrlen(), ArgMax())
}

type sized struct {
	key  string // the variable's name, for a variable
	arg  int    // the argument's index, for an argument; -1 for a variable
	size int    // bytes including the NUL
}

// label is how a message names the entry. Built only for a message: the
// check itself runs before every exec and must not format each variable.
func (e sized) label() string {
	if e.arg >= 0 {
		return "argument " + strconv.Itoa(e.arg)
	}
	return strconv.Quote(e.key)
}

func envName(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return name
}

// largest describes up to three of the biggest entries, biggest first, ties
// by name so the message is stable.
func largest(s []sized) string {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].size != s[j].size {
			return s[i].size > s[j].size
		}
		return s[i].label() < s[j].label()
	})
	if len(s) > 3 {
		s = s[:3]
	}
	parts := make([]string, len(s))
	for i, e := range s {
		parts[i] = fmt.Sprintf("%s (%d bytes)", e.label(), e.size)
	}
	return strings.Join(parts, ", ")
}

// fileHint names the way out for oversized variables: delivering them as
// files instead. It expects s sorted by largest and looks at the same (at most
// three) entries largest named; arguments have no such way out.
func fileHint(s []sized) string {
	var flags []string
	for _, e := range s[:min(len(s), 3)] {
		if e.arg < 0 {
			flags = append(flags, "--file "+e.key)
		}
	}
	if len(flags) == 0 {
		return ""
	}
	return "; deliver them as files instead (" + strings.Join(flags, " ") + ")"
}

func checkLimits(path string, argv, envp []string, maxStr, argMax int) error {
	var tooLong []sized
	total := 0
	if path != "" {
		total += len(path) + 1
	}
	for i, a := range argv {
		n := len(a) + 1
		total += n
		if n > maxStr {
			tooLong = append(tooLong, sized{arg: i, size: n})
		}
	}
	for _, kv := range envp {
		n := len(kv) + 1
		total += n
		if n > maxStr {
			tooLong = append(tooLong, sized{key: envName(kv), arg: -1, size: n})
		}
	}
	if len(tooLong) > 0 {
		return fmt.Errorf("%w: %s over the limit of %d bytes per KEY=VALUE string (NUL included)%s",
			ErrTooLarge, largest(tooLong), maxStr, fileHint(tooLong))
	}
	// The kernel counts at least one argv pointer even for an empty argv.
	ptrs := max(len(argv), 1) + len(envp)
	total += ptrs * ptrSize
	if total > argMax {
		vars := make([]sized, len(envp))
		for i, kv := range envp {
			vars[i] = sized{key: envName(kv), arg: -1, size: len(kv) + 1}
		}
		return fmt.Errorf("%w: arguments and environment need %d bytes, the limit is %d (ARG_MAX: a quarter of the stack limit, at least 32 pages); largest variables: %s%s",
			ErrTooLarge, total, argMax, largest(vars), fileHint(vars))
	}
	return nil
}
