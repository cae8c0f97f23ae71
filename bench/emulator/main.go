// Command emulator serves the phasetest.Large(n) fixture on loopback for
// bench/run. It prints one line of shell assignments (PHASE_HOST,
// PHASE_SERVICE_TOKEN, PHASE_APP_ID, PHASE_ENV; for a curl baseline of the
// secrets request BENCH_BEARER, BENCH_ENV_ID and BENCH_RAW_HOST) and then
// obeys one-word commands on standard input, so the script can read the
// request counters between runs and switch the injected latency without
// re-encrypting the fixture:
//
//	reset            zero the request counters
//	counts           print the counters as one JSON line
//	latency 20ms     delay every answer by that much (0 removes it)
//
// PHASE_HOST is bench.Front, which answers a request it has seen before
// from a cache (see there why); BENCH_RAW_HOST is the emulator itself,
// uncached, so that the cost of its JSON encoding can still be shown. It exits when standard input closes and only ever
// listens on 127.0.0.1.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/phase-shim/phase-shim/bench"
	"github.com/phase-shim/phase-shim/fetch/phasecrypto"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f := bench.NewFront(s)
	hs := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	defer hs.Close()

	tok := s.Token("large", kind)
	parsed, err := phasecrypto.ParseToken(tok)
	if err != nil {
		return err
	}
	// The bearer is the Authorization value minus "Bearer ", its space
	// made a colon: one shell word, so the line stays NAME=value pairs.
	bearer := strings.Replace(strings.TrimPrefix(parsed.AuthorizationHeader(), "Bearer "), " ", ":", 1)
	fmt.Fprintf(out, "PHASE_HOST=http://%s PHASE_SERVICE_TOKEN=%s PHASE_APP_ID=%s PHASE_ENV=Production BENCH_BEARER=%s BENCH_ENV_ID=%s BENCH_RAW_HOST=%s\n",
		l.Addr(), tok, s.AppID("large"), bearer, s.EnvID("large", "Production"), s.URL())

	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "reset":
			f.Reset()
			fmt.Fprintln(out, "ok")
		case "counts":
			b, err := json.Marshal(f.Counts())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
		case "latency":
			if len(fields) != 2 {
				return fmt.Errorf("latency wants one duration")
			}
			d, err := time.ParseDuration(fields[1])
			if err != nil {
				return err
			}
			f.SetLatency(d)
			fmt.Fprintln(out, "ok")
		default:
			return fmt.Errorf("unknown command %q", fields[0])
		}
	}
	return sc.Err()
}
