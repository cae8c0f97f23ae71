// Command fleet simulates a fleet scaling out at once against a
// rate-limited Phase: N real phase-shim processes start together against one
// emulator that allows R requests a minute (token bucket, 429 with
// Retry-After beyond it, like Phase Cloud). Each process wraps /usr/bin/true,
// so "started" means the command was exec'd, and its exit time is its time
// to exec.
//
// Every N runs three clients on a fresh emulator each, in the same
// invocation: phase-shim as shipped (retries, no cache), phase-shim with a
// warm --cache-dir (a fleet restarting with its last-known-good cache), and
// phase-shim with retries off (PHASE_SHIM_TEST_MAX_ATTEMPTS=1: what a client
// that does not retry gets).
//
// With -sized-modes, the listed clients run a second time for every N with
// a --timeout sized to the rate limit (-sized-timeout): at R requests a
// minute a fleet of N needs 2N/R minutes for its 2N requests, so a fixed
// 30 s cannot start N=500 at 240/min, whatever the client does.
//
//	go run ./bench/fleet -n 50,200,500 -rpm 240 -sized-modes retry,noretry
//	go run ./bench/fleet -n 50 -rpm 240 -write=false   # print only
//
// Everything stays on 127.0.0.1; every process has a hard kill bound.
// Results go to the "Fleet start" section of BENCHMARKS.md (-write).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

type config struct {
	ns      []int
	rpm     int
	burst   int
	timeout time.Duration // phase-shim --timeout
	hard    time.Duration // SIGKILL bound per process; 0: --timeout + 30s
	modes   []string
	// The second pass: these clients again, with a --timeout per N.
	sizedModes []string
	sizedArg   string
	sized      map[int]time.Duration
	bin        string
	out        string
	write      bool
	label      string // where the binary came from, for the report
}

func main() {
	var (
		c          config
		nsArg      string
		modes      string
		sizedModes string
	)
	flag.StringVar(&nsArg, "n", "50,200,500", "fleet sizes, comma-separated")
	flag.IntVar(&c.rpm, "rpm", 240, "emulator rate limit: requests per minute (Phase Cloud: 120-240 per account)")
	flag.IntVar(&c.burst, "burst", 0, "token bucket size (0: one minute's worth, as -rpm)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "phase-shim --timeout (its default is 30s)")
	flag.DurationVar(&c.hard, "hard", 0, "kill a process still running after this long (0: timeout + 30s)")
	flag.StringVar(&modes, "modes", "retry,cache,noretry", "clients to run: retry, cache, noretry, deadline (retries bounded by --timeout only)")
	flag.StringVar(&sizedModes, "sized-modes", "", "clients to run again with a --timeout sized to the rate limit (-sized-timeout); empty: no second pass")
	flag.StringVar(&c.sizedArg, "sized-timeout", "auto", "the second pass's --timeout: auto (1.5 × 2N/R minutes, rounded up to 30 s), or one duration per -n, comma-separated")
	flag.StringVar(&c.bin, "bin", "", "phase-shim binary to use (default: build one from this module)")
	flag.StringVar(&c.out, "out", "BENCHMARKS.md", "file whose \"Fleet start\" section gets the results")
	flag.BoolVar(&c.write, "write", true, "write the results to -out")
	flag.StringVar(&c.label, "label", "", "where -bin came from, for the report (e.g. \"HEAD 1234abc\")")
	flag.Parse()
	for _, f := range strings.Split(nsArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > 2000 {
			fatalf("-n: %q is not a fleet size between 1 and 2000", f)
		}
		c.ns = append(c.ns, n)
	}
	for _, m := range strings.Split(modes, ",") {
		if _, ok := clientNames[m]; !ok {
			fatalf("-modes: unknown client %q", m)
		}
		c.modes = append(c.modes, m)
	}
	if sizedModes != "" {
		for _, m := range strings.Split(sizedModes, ",") {
			if _, ok := clientNames[m]; !ok {
				fatalf("-sized-modes: unknown client %q", m)
			}
			c.sizedModes = append(c.sizedModes, m)
		}
	}
	if c.rpm <= 0 {
		fatalf("-rpm must be positive")
	}
	c.sized = map[int]time.Duration{}
	if c.sizedArg == "auto" {
		for _, n := range c.ns {
			c.sized[n] = sizedTimeout(n, c.rpm)
		}
	} else {
		parts := strings.Split(c.sizedArg, ",")
		if len(parts) != len(c.ns) {
			fatalf("-sized-timeout: %d durations for %d fleet sizes", len(parts), len(c.ns))
		}
		for i, p := range parts {
			d, err := time.ParseDuration(strings.TrimSpace(p))
			if err != nil || d <= 0 {
				fatalf("-sized-timeout: %q is not a positive duration", p)
			}
			c.sized[c.ns[i]] = d
		}
	}
	if c.burst <= 0 {
		c.burst = c.rpm
	}
	work, err := os.MkdirTemp("", "phase-shim-fleet-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(work)
	if c.bin == "" {
		c.bin = filepath.Join(work, "phase-shim")
		fmt.Fprintln(os.Stderr, "fleet: building phase-shim")
		if err := build(c.bin); err != nil {
			fatalf("%v", err)
		}
		c.label = "working tree"
		if rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
			c.label = "working tree at " + strings.TrimSpace(string(rev))
		}
	} else if c.label == "" {
		c.label = "a given binary"
	}

	started := time.Now()
	var results []result
	run := func(n int, m string, timeout time.Duration) {
		fmt.Fprintf(os.Stderr, "fleet: N=%d client=%s --timeout %s ...\n", n, m, timeout)
		r, err := runFleet(c, n, m, timeout, work)
		if err != nil {
			fatalf("N=%d %s: %v", n, m, err)
		}
		fmt.Fprintf(os.Stderr, "fleet:   %s\n", r.line())
		results = append(results, r)
	}
	for _, n := range c.ns {
		for _, m := range c.modes {
			run(n, m, c.timeout)
		}
	}
	for _, n := range c.ns {
		for _, m := range c.sizedModes {
			run(n, m, c.sized[n])
		}
	}
	md := render(c, results, time.Since(started))
	fmt.Print(md)
	if c.write {
		if err := writeSection(c.out, "Fleet start", md); err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintf(os.Stderr, "fleet: wrote the \"Fleet start\" section of %s\n", c.out)
	}
}

// sizedTimeout is a --timeout a fleet of n can start within at rpm
// requests a minute: its 2n requests at the sustained rate (the initial
// burst ignored, which only helps), plus half again for the slack of
// backoff (a retrying process wakes up to Retry-After + 8 s after a slot
// frees) and of spawning n processes on a busy machine, rounded up to 30 s.
func sizedTimeout(n, rpm int) time.Duration {
	need := time.Duration(float64(2*n) / float64(rpm) * float64(time.Minute) * 1.5)
	return (need + 30*time.Second - 1).Truncate(30 * time.Second)
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fleet: "+format+"\n", a...)
	os.Exit(1)
}

// build makes the release binary (static, trimmed) from the module root.
func build(out string) error {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("go list -m: %w", err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = strings.TrimSpace(string(root))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	return nil
}

type result struct {
	n, rpm    int
	mode      string
	timeout   time.Duration // phase-shim --timeout
	started   int
	fromCache int
	codes     map[int]int // exit code → processes, failures only
	times     []time.Duration
	requests  int64
	limited   int64
	wall      time.Duration // first start to last exit
}

func (r result) pct(p float64) string {
	if len(r.times) == 0 {
		return "–"
	}
	i := int(float64(len(r.times)-1) * p)
	return fmtDur(r.times[i])
}

func fmtDur(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func (r result) failures() string {
	if len(r.codes) == 0 {
		return "–"
	}
	var codes []int
	for c := range r.codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d × exit %d", r.codes[c], c))
	}
	return strings.Join(parts, ", ")
}

func (r result) line() string {
	return fmt.Sprintf("--timeout %s: started %d/%d (%d from cache), p50 %s p99 %s max %s, %d requests (%d answered 429), failed: %s",
		r.timeout, r.started, r.n, r.fromCache, r.pct(0.5), r.pct(0.99), r.pct(1), r.requests, r.limited, r.failures())
}

var clientNames = map[string]string{
	"retry":   "retries (as shipped)",
	"cache":   "retries + warm --cache-dir (fallback after 5 s)",
	"noretry": "no retries",
	// Since 3e5c5a6 the same as "retry"; kept to compare older binaries,
	// which gave up after 8 attempts.
	"deadline": "retries until the deadline (no attempt cap)",
}

// runFleet starts n processes at once against a fresh rate-limited emulator.
func runFleet(c config, n int, mode string, timeout time.Duration, work string) (result, error) {
	s, err := phasetest.Start("127.0.0.1:0", phasetest.DemoFixture())
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	token := s.Token("shop", "service_v2")
	dir, err := os.MkdirTemp(work, mode+"-")
	if err != nil {
		return result{}, err
	}
	cacheDir := filepath.Join(dir, "cache")
	args := []string{"--timeout", timeout.String(), "--app", "shop", "--env", "Production"}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "PHASE_HOST=" + s.URL(), "PHASE_SERVICE_TOKEN=" + token}
	switch mode {
	case "cache":
		args = append(args, "--cache-dir", cacheDir)
	case "noretry":
		env = append(env, "PHASE_SHIM_TEST_MAX_ATTEMPTS=1")
	case "deadline":
		env = append(env, "PHASE_SHIM_TEST_MAX_ATTEMPTS=100000")
	}
	argv := append(slices.Clone(args), "--", "/usr/bin/true")

	if mode == "cache" {
		// The fleet ran before: one earlier start left the cache (on a
		// volume all tasks of a host share, or baked per task).
		cmd := exec.Command(c.bin, argv...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("warming the cache: %v\n%s", err, out)
		}
	}
	s.ResetCounts()
	s.SetRateLimit(c.rpm, c.burst)

	type outcome struct {
		code      int
		took      time.Duration
		fromCache bool
		err       error
	}
	hard := c.hard
	if hard <= 0 {
		hard = timeout + 30*time.Second
	}
	outs := make([]outcome, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	var first, last time.Time
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), hard)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.bin, argv...)
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr
			<-gate
			t0 := time.Now()
			err := cmd.Run()
			t1 := time.Now()
			mu.Lock()
			if first.IsZero() || t0.Before(first) {
				first = t0
			}
			if t1.After(last) {
				last = t1
			}
			mu.Unlock()
			o := outcome{took: t1.Sub(t0), fromCache: strings.Contains(stderr.String(), "using the cached secrets")}
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				o.code = ee.ExitCode()
				if o.code < 0 {
					o.code = -1 // killed by the hard bound
				}
			default:
				o.err = err
			}
			outs[i] = o
		}(i)
	}
	close(gate)
	wg.Wait()

	r := result{n: n, rpm: c.rpm, mode: mode, timeout: timeout, codes: map[int]int{}, wall: last.Sub(first)}
	for _, o := range outs {
		if o.err != nil {
			return result{}, fmt.Errorf("starting phase-shim: %w", o.err)
		}
		if o.code == 0 {
			r.started++
			r.times = append(r.times, o.took)
			if o.fromCache {
				r.fromCache++
			}
		} else {
			r.codes[o.code]++
		}
	}
	slices.Sort(r.times)
	cnt := s.Requests()
	r.requests, r.limited = cnt.Total, cnt.RateLimited
	return r, nil
}

// render is the markdown of the section (without its heading).
func render(c config, rs []result, took time.Duration) string {
	var b strings.Builder
	sized := ""
	if len(c.sizedModes) > 0 {
		sized = fmt.Sprintf(" -sized-modes %s -sized-timeout %s", strings.Join(c.sizedModes, ","), c.sizedArg)
	}
	fmt.Fprintf(&b, "`go run ./bench/fleet -n %s -rpm %d -timeout %s -modes %s%s` on %s, %d CPUs (%s, %s/%s), phase-shim: %s; the run took %s.\n\n",
		joinInts(c.ns), c.rpm, c.timeout, strings.Join(c.modes, ","), sized, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, c.label, fmtDur(took))
	fmt.Fprintf(&b, "N phase-shim processes start at the same instant against one emulator limited to %d requests/minute "+
		"(token bucket of %d, 429 with `Retry-After` in whole seconds beyond it). Each start needs 2 requests. "+
		"The wrapped command is `/usr/bin/true`: exit 0 means it was exec'd; time to exec is the process's lifetime. "+
		"Percentiles are over the processes that started. Requests include the 429 answers.", c.rpm, c.burst)
	if len(c.sizedModes) > 0 {
		b.WriteString(" The second group of rows runs with a `--timeout` sized to the rate limit")
		if c.sizedArg == "auto" {
			b.WriteString(": 1.5 × 2N/R minutes (2N requests at R a minute, the initial burst ignored, plus half again for backoff and spawn slack), rounded up to 30 s")
		}
		b.WriteString(".")
	}
	b.WriteString("\n\n")
	b.WriteString("| N | --timeout | client | started | from cache | p50 | p99 | max | requests (429) | did not start |\n")
	b.WriteString("|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %s | %s | %d/%d | %d | %s | %s | %s | %d (%d) | %s |\n",
			r.n, fmtTimeout(r.timeout), clientNames[r.mode], r.started, r.n, r.fromCache, r.pct(0.5), r.pct(0.99), r.pct(1),
			r.requests, r.limited, r.failures())
	}
	b.WriteString("\n")
	return b.String()
}

// fmtTimeout writes 150s as 2.5 min.
func fmtTimeout(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%g s", d.Seconds())
	}
	return fmt.Sprintf("%g min", d.Minutes())
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// writeSection puts body into the "## title" section of path. When the
// section holds the markers <!-- fleet:begin --> … <!-- fleet:end -->, only
// the text between them is replaced, so hand-written notes around the table
// survive a re-run; otherwise the whole section (up to the next "## ") is
// written, or appended when missing. Other sections are never touched.
func writeSection(path, title, body string) error {
	const begin, end = "<!-- fleet:begin -->\n", "<!-- fleet:end -->\n"
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Benchmarks\n"
	}
	heading := "## " + title + "\n"
	generated := begin + body + end
	start := strings.Index(text, heading)
	if start < 0 {
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		text += "\n" + heading + "\n" + generated
	} else {
		stop := len(text)
		if i := strings.Index(text[start+len(heading):], "\n## "); i >= 0 {
			stop = start + len(heading) + i + 1
		}
		sec := text[start:stop]
		b, e := strings.Index(sec, begin), strings.Index(sec, end)
		if b >= 0 && e > b {
			sec = sec[:b] + generated + sec[e+len(end):]
		} else {
			sec = heading + "\n" + generated
		}
		text = text[:start] + sec + text[stop:]
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
