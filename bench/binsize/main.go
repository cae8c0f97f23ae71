// Command binsize tells where the bytes of a Go binary go: it reads the
// symbol table of an unstripped build (go tool nm -size) and adds up, per
// package, the symbols that are stored in the file. Symbols in .bss and
// .noptrbss cost address space, not bytes on disk, so they are left out.
//
//	go tool nm -size -sort size BIN | go run ./bench/binsize -bin BIN [-top 25] [-json out.json]
package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

type row struct {
	Package string `json:"package"`
	Bytes   int64  `json:"bytes"`
	Symbols int    `json:"symbols"`
}

type report struct {
	Sections map[string]uint64 `json:"sections"` // file-backed sections that survive stripping
	Packages []row             `json:"packages"`
}

func main() {
	bin := flag.String("bin", "", "the unstripped binary the nm output was made from")
	top := flag.Int("top", 25, "packages to print")
	out := flag.String("json", "", "also write the full table here")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *bin, *top, *out); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

type span struct{ lo, hi uint64 }

func run(in io.Reader, w io.Writer, bin string, top int, out string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	var nobits []span
	rep := report{Sections: map[string]uint64{}}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue // debug info and symbol tables: gone with -s -w
		}
		if s.Type == elf.SHT_NOBITS {
			nobits = append(nobits, span{s.Addr, s.Addr + s.Size})
			continue
		}
		rep.Sections[s.Name] = s.Size
	}
	inBSS := func(a uint64) bool {
		for _, s := range nobits {
			if a >= s.lo && a < s.hi {
				return true
			}
		}
		return false
	}

	sizes := map[string]*row{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// "  addr   size T name with maybe spaces"
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		addr, err1 := strconv.ParseUint(fields[0], 16, 64)
		size, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil || size == 0 || inBSS(addr) {
			continue
		}
		switch fields[2] {
		case "U", "B", "b":
			continue
		}
		pkg := packageOf(strings.Join(fields[3:], " "))
		r := sizes[pkg]
		if r == nil {
			r = &row{Package: pkg}
			sizes[pkg] = r
		}
		r.Bytes += size
		r.Symbols++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, r := range sizes {
		rep.Packages = append(rep.Packages, *r)
	}
	sort.Slice(rep.Packages, func(i, j int) bool {
		if rep.Packages[i].Bytes != rep.Packages[j].Bytes {
			return rep.Packages[i].Bytes > rep.Packages[j].Bytes
		}
		return rep.Packages[i].Package < rep.Packages[j].Package
	})

	var total int64
	for _, r := range rep.Packages {
		total += r.Bytes
	}
	fmt.Fprintf(w, "| package (or group) | bytes in symbols | share |\n|---|---:|---:|\n")
	var rest int64
	for i, r := range rep.Packages {
		if i >= top {
			rest += r.Bytes
			continue
		}
		fmt.Fprintf(w, "| `%s` | %d | %.1f %% |\n", r.Package, r.Bytes, 100*float64(r.Bytes)/float64(total))
	}
	if rest > 0 {
		fmt.Fprintf(w, "| %d other groups | %d | %.1f %% |\n", len(rep.Packages)-top, rest, 100*float64(rest)/float64(total))
	}
	fmt.Fprintf(w, "| **all symbols** | %d | |\n", total)
	if pcl, ok := rep.Sections[".gopclntab"]; ok {
		fmt.Fprintf(w, "| `.gopclntab` (function tables for stacks and GC, not in the symbols above) | %d | |\n", pcl)
	}
	if out == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// packageOf reduces a symbol to the package that owns it, folding the
// crypto/internal/fips140 tree and the runtime's synthetic symbols into
// groups a reader can act on.
func packageOf(sym string) string {
	switch {
	case strings.HasPrefix(sym, "go:func."), strings.HasPrefix(sym, "runtime.") && strings.Contains(sym, "functab"):
		return "(func metadata: go:func.*)"
	case strings.HasPrefix(sym, "type:"):
		return "(type descriptors: type:*)"
	case strings.HasPrefix(sym, "go:string."), strings.HasPrefix(sym, "go:"):
		return "(go: strings and other linker data)"
	}
	// Strip a receiver or generic instantiation before looking for the
	// package boundary: "net/http.(*Transport).dialConn", "slices.Sort[...]".
	cut := sym
	if i := strings.IndexAny(cut, "[("); i >= 0 {
		cut = cut[:i]
	}
	slash := strings.LastIndex(cut, "/")
	dot := strings.Index(cut[slash+1:], ".")
	pkg := cut
	if dot >= 0 {
		pkg = cut[:slash+1+dot]
	}
	pkg = strings.TrimPrefix(pkg, "vendor/")
	if strings.HasPrefix(pkg, "crypto/internal/fips140") {
		return "crypto/internal/fips140/... (TLS's FIPS module: AES, SHA, ECDSA, RSA, ML-KEM, P-256…)"
	}
	return pkg
}
