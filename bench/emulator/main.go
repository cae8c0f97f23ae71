// Command emulator serves the phasetest.Large(n) fixture on loopback for
// bench/run: it prints one line of shell assignments (PHASE_HOST,
// PHASE_SERVICE_TOKEN, PHASE_APP_ID, PHASE_ENV) and then obeys one-word
// commands on standard input, so the script can read the request counters
// between runs and switch the injected latency without re-encrypting the
// fixture:
//
//	reset            zero the request counters
//	counts           print the counters as one JSON line
//	latency 20ms     delay every answer by that much (0 removes it)
//
// It exits when standard input closes. It only ever listens on 127.0.0.1.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/fetch/phasetest"
)

func main() {
	n := flag.Int("n", 1000, "secrets in the Production environment of app \"large\"")
	kind := flag.String("kind", phasetest.ServiceV2, "token kind: service_v1, service_v2 or user")
	flag.Parse()
	if err := run(*n, *kind, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(1)
	}
}

func run(n int, kind string, in io.Reader, out io.Writer) error {
	// A fixed seed: every run of the benchmark serves the same bytes.
	s, err := phasetest.Start("127.0.0.1:0", phasetest.Large(n), phasetest.WithSeed(5))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "PHASE_HOST=%s PHASE_SERVICE_TOKEN=%s PHASE_APP_ID=%s PHASE_ENV=Production\n",
		s.URL(), s.Token("large", kind), s.AppID("large"))

	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "reset":
			s.ResetCounts()
			fmt.Fprintln(out, "ok")
		case "counts":
			b, err := json.Marshal(s.Requests())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
		case "latency":
			if len(f) != 2 {
				return fmt.Errorf("latency wants one duration")
			}
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return err
			}
			s.SetLatency(d, 0)
			fmt.Fprintln(out, "ok")
		default:
			return fmt.Errorf("unknown command %q", f[0])
		}
	}
	return sc.Err()
}
