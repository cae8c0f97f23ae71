// Command report turns one bench/run result directory into the markdown
// tables of BENCHMARKS.md: every figure next to the baseline measured in
// the same run, and each target of issue 5 judged met or missed.
//
//	go run ./bench/report -dir bench/results/latest [-write BENCHMARKS.md]
//
// With -write it also replaces the "## Results" section of that file (up
// to the next "## " heading), leaving every other section alone.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", "bench/results/latest", "a bench/run result directory")
	write := flag.String("write", "", "also put the report in this file's \"## Results\" section")
	flag.Parse()
	var b strings.Builder
	err := run(*dir, &b)
	if err == nil && *write != "" {
		err = writeSection(*write, "Results", b.String())
	}
	os.Stdout.WriteString(b.String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// writeSection replaces the body of "## title" in path, or appends the
// section when the file has none. The tables use "###" headings, so the
// section ends at the next "## ".
func writeSection(path, title, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	heading := "## " + title + "\n"
	section := heading + "\n" + body
	start := strings.Index(text, heading)
	if start < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		text += "\n" + section
	} else {
		end := len(text)
		if i := strings.Index(text[start+len(heading):], "\n## "); i >= 0 {
			end = start + len(heading) + i + 1
		}
		if !strings.HasSuffix(section, "\n\n") && end < len(text) {
			section += "\n"
		}
		text = text[:start] + section + text[end:]
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// hyperfine --export-json, the fields used here (seconds).
type hfResult struct {
	Command string    `json:"command"`
	Mean    float64   `json:"mean"`
	Stddev  float64   `json:"stddev"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Times   []float64 `json:"times"`
}

type hfFile struct {
	Results []hfResult `json:"results"`
}

// loadHF returns the results of one hyperfine export by command name, nil
// when the file is missing (a partial run).
func loadHF(dir, name string) (map[string]hfResult, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f hfFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m := map[string]hfResult{}
	for _, r := range f.Results {
		m[r.Command] = r
	}
	return m, nil
}

// goBench is one benchmark over -count runs.
type goBench struct {
	name   string
	procs  int
	ns     []float64
	bytes  []float64
	allocs []float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op(?:.*?\s([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

func loadGoBench(dir string) (map[string]*goBench, []string, error) {
	f, err := os.Open(filepath.Join(dir, "gobench.txt"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*goBench{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	m := map[string]*goBench{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		g := benchLine.FindStringSubmatch(sc.Text())
		if g == nil {
			continue
		}
		procs := 1
		if g[2] != "" {
			procs, _ = strconv.Atoi(g[2])
		}
		key := fmt.Sprintf("%s@%d", g[1], procs)
		b := m[key]
		if b == nil {
			b = &goBench{name: g[1], procs: procs}
			m[key] = b
			order = append(order, key)
		}
		ns, _ := strconv.ParseFloat(g[3], 64)
		b.ns = append(b.ns, ns)
		if g[4] != "" {
			by, _ := strconv.ParseFloat(g[4], 64)
			al, _ := strconv.ParseFloat(g[5], 64)
			b.bytes = append(b.bytes, by)
			b.allocs = append(b.allocs, al)
		}
	}
	return m, order, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadTSV reads "label<TAB>value" lines into label → values.
func loadTSV(dir, name string) (map[string][]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if ok {
			m[k] = append(m[k], v)
		}
	}
	return m, nil
}

// peakRSS is the largest "maximum resident set size" over the runs, in KiB.
func peakRSS(rss map[string][]string, label string) (max, med float64, ok bool) {
	var xs []float64
	for _, v := range rss[label] {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			xs = append(xs, f)
		}
	}
	if len(xs) == 0 {
		return 0, 0, false
	}
	return slices.Max(xs), median(xs), true
}

func ms(s float64) string { return fmt.Sprintf("%.2f", s*1e3) }

// cell is "median (min–max, σ)" in milliseconds. Medians, not means: on a
// shared machine a few runs land behind someone else's compile and drag a
// mean by tens of milliseconds.
func cell(r hfResult) string {
	return fmt.Sprintf("%s (%s–%s, σ %s)", ms(r.Median), ms(r.Min), ms(r.Max), ms(r.Stddev))
}

func mib(kib float64) string { return fmt.Sprintf("%.1f MiB", kib/1024) }

type target struct {
	what, figure string
	met          bool
	known        bool
}

func run(dir string, w io.Writer) error {
	machine, _ := os.ReadFile(filepath.Join(dir, "machine.txt"))
	gb, gbOrder, err := loadGoBench(dir)
	if err != nil {
		return err
	}
	rss, err := loadTSV(dir, "rss.tsv")
	if err != nil {
		return err
	}
	reqs, err := loadTSV(dir, "requests.tsv")
	if err != nil {
		return err
	}
	sizes, err := loadTSV(dir, "size.tsv")
	if err != nil {
		return err
	}
	var targets []target

	fmt.Fprintf(w, "Generated by `bench/run` (raw data: `bench/results/%s/`).\n\n```\n%s```\n\n", filepath.Base(mustAbs(dir)), machine)

	// The physical limit.
	nproc := 1
	for _, b := range gb {
		nproc = max(nproc, b.procs)
	}
	limitNs := math.NaN() // ns per X25519 spread over all cores, from medians
	bestNs := math.NaN()  // the same, best run
	fmt.Fprintf(w, "### The physical limit: X25519 on this machine\n\n")
	fmt.Fprintf(w, "| operation | cores | ns/op (median) | spread (min–max) | ops/s |\n|---|---:|---:|---:|---:|\n")
	for _, name := range []string{"BenchmarkECDH", "BenchmarkX25519"} {
		for _, p := range []int{1, nproc} {
			b := gb[fmt.Sprintf("%s@%d", name, p)]
			if b == nil || (p == nproc && p == 1 && name == "") {
				continue
			}
			m := median(b.ns)
			label := "one scalar multiplication (crypto/ecdh, key parsed once)"
			if name == "BenchmarkX25519" {
				label = "`curve25519.X25519` (x/crypto: derives the public key too)"
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %.0f–%.0f | %.0f |\n", label, p, m, slices.Min(b.ns), slices.Max(b.ns), 1e9/m)
			if name == "BenchmarkECDH" {
				// The limit is 2·N operations spread over all cores: the
				// single-core time divided by the core count, or the
				// all-cores run's time per operation, whichever is smaller
				// (the best this machine showed).
				lm, lb := m, slices.Min(b.ns)
				if p == 1 {
					lm, lb = lm/float64(nproc), lb/float64(nproc)
				}
				if math.IsNaN(limitNs) || lm < limitNs {
					limitNs = lm
				}
				if math.IsNaN(bestNs) || lb < bestNs {
					bestNs = lb
				}
			}
			if p == 1 && nproc == 1 {
				break
			}
		}
	}
	singleNs := math.NaN() // one operation on one core, median
	if b := gb["BenchmarkECDH@1"]; b != nil {
		singleNs = median(b.ns)
	}
	limit := func(n int) float64 { return 2 * float64(n) * limitNs / 1e9 } // seconds
	bestLimit := func(n int) float64 { return 2 * float64(n) * bestNs / 1e9 }
	fmt.Fprintf(w, "\nDecryption limit for N secrets = 2·N scalar multiplications spread over all %d cores: 2·N × the smaller of (single-core time / %d) and the all-cores time per operation = 2·N × %.0f ns (medians; from the best runs: 2·N × %.0f ns).\n\n", nproc, nproc, limitNs, bestNs)

	// Exec overhead from a file.
	fmt.Fprintf(w, "### Exec overhead: N secrets from a file, then `/bin/true`\n\n")
	fmt.Fprintf(w, "Times in ms: median (min–max, σ) of the hyperfine runs; differences and ratios are of medians. Peak RSS is the largest of the `/usr/bin/time` runs.\n\n")
	fmt.Fprintf(w, "Go floor: `bench/floor /bin/true`, a Go program that only execve's: the Go runtime's start and the execve of a multi-threaded process, which any Go wrapper pays.\n\n")
	fmt.Fprintf(w, "| N | `/bin/true` | shell pattern | Go floor | phase-shim | phase-shim − true | phase-shim − Go floor | phase-shim / shell | peak RSS true / shell / shim |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var envRows []string
	worstOver, allBelowShell, haveExec := 0.0, true, false
	for _, n := range []int{10, 100, 1000} {
		h, err := loadHF(dir, fmt.Sprintf("exec-%d", n))
		if err != nil {
			return err
		}
		if h == nil {
			continue
		}
		haveExec = true
		t, sh, s := h["true"], h["shell"], h["shim"]
		over := s.Median - t.Median
		worstOver = max(worstOver, over)
		if s.Median >= sh.Median {
			allBelowShell = false
		}
		rt, _, _ := peakRSS(rss, fmt.Sprintf("exec-%d-true", n))
		rsh, _, _ := peakRSS(rss, fmt.Sprintf("exec-%d-shell", n))
		rs, _, _ := peakRSS(rss, fmt.Sprintf("exec-%d-shim", n))
		floorCell, overFloor := "–", "–"
		if fl, ok := h["floor"]; ok {
			floorCell, overFloor = cell(fl), ms(s.Median-fl.Median)+" ms"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | **%s ms** | %s | **%.2f×** | %s / %s / %s |\n",
			n, cell(t), cell(sh), floorCell, cell(s), ms(over), overFloor, s.Median/sh.Median, mib(rt), mib(rsh), mib(rs))
		if he, err := loadHF(dir, fmt.Sprintf("exec-%d-env", n)); err != nil {
			return err
		} else if he != nil {
			te, fe := he["true"], he["floor"]
			envRows = append(envRows, fmt.Sprintf("| %d | %s | %s ms | %s | %s ms | %s ms | %s ms |",
				n, cell(te), ms(te.Median-t.Median), cell(fe), ms(s.Median-te.Median), ms(s.Median-fe.Median), ms(fe.Median-te.Median)))
		}
	}
	if len(envRows) > 0 {
		fmt.Fprintf(w, "\nThe command itself starting with N more variables costs time whoever puts them there (the shell pattern too). "+
			"Here `/bin/true` and the Go floor already have the same N variables in their environment (same run, ms):\n\n")
		fmt.Fprintf(w, "| N | `/bin/true` with the N variables | of which the variables | Go floor with the N variables | phase-shim − that `/bin/true` | phase-shim − that floor | Go floor − that `/bin/true` |\n|---:|---:|---:|---:|---:|---:|---:|\n%s\n", strings.Join(envRows, "\n"))
	}
	if haveExec {
		targets = append(targets,
			target{"exec overhead under 2 ms over bare `/bin/true` (10, 100, 1,000 secrets)", fmt.Sprintf("worst: %s ms", ms(worstOver)), worstOver < 0.002, true},
			target{"exec overhead below the shell pattern at every size", fmt.Sprintf("%v", allBelowShell), allBelowShell, true})
	}

	// Start-up and size.
	if h, err := loadHF(dir, "version"); err != nil {
		return err
	} else if h != nil {
		t, v := h["true"], h["version"]
		rt, _, _ := peakRSS(rss, "version-true")
		rv, _, _ := peakRSS(rss, "version-shim")
		fmt.Fprintf(w, "\n### Start-up of `phase-shim version`\n\n| `/bin/true` | empty Go program | `phase-shim version` | version − true | version − empty Go | peak RSS true / version |\n|---:|---:|---:|---:|---:|---:|\n")
		emptyCell, overEmpty := "–", "–"
		if e, ok := h["empty"]; ok {
			emptyCell, overEmpty = cell(e), ms(v.Median-e.Median)+" ms"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s ms | %s | %s / %s |\n", cell(t), emptyCell, cell(v), ms(v.Median-t.Median), overEmpty, mib(rt), mib(rv))
	}

	// The Phase path.
	fmt.Fprintf(w, "\n### The Phase path: emulator on 127.0.0.1, then `/bin/true`\n\n")
	fmt.Fprintf(w, "Times in ms: median (min–max, σ). Time to exec = phase-shim − `/bin/true` (medians). "+
		"Floor = the decryption limit (2·N X25519 spread over all cores, above) plus, with latency, two round trips: "+
		"the secrets request needs the environment id from the tokens answer, so the two cannot overlap. "+
		"In brackets: the same ratio from the best run of each.\n\n")
	fmt.Fprintf(w, "| N | latency | `/bin/true` | phase-shim | time to exec | floor | × floor | Node SDK | Node / phase-shim | requests shim / Node | peak RSS shim / Node |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var nodeRows []string
	var serverRows []string
	for _, n := range []int{10, 100, 1000, 10000} {
		for _, lat := range []string{"0", "20ms"} {
			tag := fmt.Sprintf("phase-%d-lat%s", n, lat)
			h, err := loadHF(dir, tag)
			if err != nil {
				return err
			}
			if h == nil {
				continue
			}
			t, s := h["true"], h["shim"]
			tte := s.Median - t.Median
			tteBest := s.Min - t.Min
			rtt := 0.0
			if lat != "0" {
				d, err := time.ParseDuration(lat)
				if err != nil {
					return err
				}
				rtt = 2 * d.Seconds()
			}
			floor, bestFloor := limit(n)+rtt, bestLimit(n)+rtt
			nodeCell, ratio := "–", "–"
			node, haveNode := h["node"]
			if haveNode {
				nodeCell = cell(node)
				ratio = fmt.Sprintf("**%.1f×**", node.Median/s.Median)
			}
			rq := requests(reqs, tag+"-shim") + " / " + requests(reqs, tag+"-node")
			rssCell := "–"
			if lat == "0" {
				rs, _, ok1 := peakRSS(rss, tag+"-shim")
				rn, _, ok2 := peakRSS(rss, tag+"-node")
				if ok1 {
					rssCell = mib(rs)
					if ok2 {
						rssCell += " / " + mib(rn)
					}
				}
				if n == 1000 {
					budget := 1.5*limit(n) + 0.010
					targets = append(targets, target{"1,000 secrets from the loopback emulator to exec within 1.5× the decryption limit + 10 ms",
						fmt.Sprintf("%s ms vs %s ms allowed (limit %s ms; medians)", ms(tte), ms(budget), ms(limit(n))), tte <= budget, !math.IsNaN(limitNs)})
					if haveNode {
						targets = append(targets, target{"at least 5× faster than the Node SDK at 1,000 secrets",
							fmt.Sprintf("%.1f× (medians)", node.Median/s.Median), node.Median/s.Median >= 5, true})
					}
				}
				if n == 10000 && ok1 {
					targets = append(targets, target{"10,000 secrets with peak RSS under 40 MiB", mib(rs), rs < 40*1024, true})
				}
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | **%s** | %s | **%.2f×** (%.2f×) | %s | %s | %s | %s |\n",
				n, lat, cell(t), cell(s), ms(tte), ms(floor), tte/floor, tteBest/bestFloor, nodeCell, ratio, rq, rssCell)
			if bare, ok := h["node-bare"]; ok && haveNode {
				sdk := node.Median - bare.Median
				nodeRows = append(nodeRows, fmt.Sprintf("| %d | %s | %s | %s | %.1f× |", n, cell(bare), ms(sdk), ms(tte), sdk/tte))
			}
			if c, ok := h["curl"]; ok {
				serverRows = append(serverRows, fmt.Sprintf("| %d | %s | %s | %s |", n, lat, cell(c), cellOr(h, "curl-uncached")))
			}
		}
	}

	if len(nodeRows) > 0 {
		fmt.Fprintf(w, "\nThe Node column above includes starting Node itself. An app that uses the SDK starts Node anyway, so here is what the SDK adds on top of `node -e 0`, against what phase-shim adds on top of `/bin/true` (no latency; medians, ms).\n\n")
		fmt.Fprintf(w, "| N | `node -e 0` | Node SDK − bare Node | phase-shim − `/bin/true` | ratio |\n|---:|---:|---:|---:|---:|\n%s\n", strings.Join(nodeRows, "\n"))
	}

	if len(serverRows) > 0 {
		fmt.Fprintf(w, "\nWhat the server side costs: one `curl` GET of the secrets response, from bench/emulator's cache (PHASE_HOST above) and from the emulator itself (uncached: it encodes its JSON on every request; no latency injected). Times in ms.\n\n")
		fmt.Fprintf(w, "| N | latency | cached (what phase-shim and Node talk to) | uncached emulator |\n|---:|---|---:|---:|\n%s\n", strings.Join(serverRows, "\n"))
	}

	// Go benchmarks.
	fmt.Fprintf(w, "\n### Go benchmarks (in process)\n\n")
	fmt.Fprintf(w, "Median of `-count` runs. \"× X25519\" divides by one scalar multiplication on one core (above).\n\n")
	fmt.Fprintf(w, "| benchmark | cores | ns/op | spread | B/op | allocs/op | × X25519 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, key := range gbOrder {
		b := gb[key]
		if strings.HasPrefix(b.name, "BenchmarkX25519") || strings.HasPrefix(b.name, "BenchmarkECDH") {
			continue
		}
		m := median(b.ns)
		by, al := "–", "–"
		if len(b.bytes) > 0 {
			by, al = fmt.Sprintf("%.0f", median(b.bytes)), fmt.Sprintf("%.0f", median(b.allocs))
		}
		fmt.Fprintf(w, "| `%s` | %d | %.0f | %.0f–%.0f | %s | %s | %.2f |\n", strings.TrimPrefix(b.name, "Benchmark"), b.procs, m, slices.Min(b.ns), slices.Max(b.ns), by, al, m/singleNs)
	}

	// Binary.
	if v := sizes["release"]; len(v) > 0 {
		size, _ := strconv.ParseFloat(v[0], 64)
		empty := math.NaN()
		if e := sizes["empty_go_program"]; len(e) > 0 {
			empty, _ = strconv.ParseFloat(e[0], 64)
		}
		fmt.Fprintf(w, "\n### Binary\n\n| build | bytes | MiB | ratio to the 7 MiB budget | ratio to an empty Go program |\n|---|---:|---:|---:|---:|\n")
		fmt.Fprintf(w, "| release (static, stripped) | %.0f | %.2f | %.2f | %.1f× |\n", size, size/(1<<20), size/(7<<20), size/empty)
		fmt.Fprintf(w, "| empty `func main() {}`, same flags | %.0f | %.2f | | 1× |\n", empty, empty/(1<<20))
		targets = append(targets, target{"binary at most 7 MiB", fmt.Sprintf("%.2f MiB", size/(1<<20)), size <= 7<<20, true})
		if b, err := os.ReadFile(filepath.Join(dir, "binsize.md")); err == nil {
			fmt.Fprintf(w, "\nWhere the bytes go (symbols of an unstripped build, by package):\n\n%s", b)
		}
	}

	fmt.Fprintf(w, "\n### Targets of issue 5\n\n| target | measured | |\n|---|---|---|\n")
	for _, t := range targets {
		verdict := "missed"
		switch {
		case !t.known:
			verdict = "unknown"
		case t.met:
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s | %s | **%s** |\n", t.what, t.figure, verdict)
	}
	return nil
}

// cellOr is cell(h[name]), or "–" when that command was not run.
func cellOr(h map[string]hfResult, name string) string {
	if r, ok := h[name]; ok {
		return cell(r)
	}
	return "–"
}

// requests is the emulator's request count for one start, "–" when absent.
func requests(reqs map[string][]string, label string) string {
	v := reqs[label]
	if len(v) == 0 {
		return "–"
	}
	var c struct{ Total int64 }
	if err := json.Unmarshal([]byte(v[0]), &c); err != nil {
		return "?"
	}
	return strconv.FormatInt(c.Total, 10)
}

func mustAbs(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
