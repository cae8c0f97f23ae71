package fetch

import (
	"fmt"
	"strings"
	"testing"
)

// Printing a Secret, the options (token) or a result by accident, with any
// verb, shows names and sizes only.
func TestAccidentalPrintingRedacts(t *testing.T) {
	const value = "hunter2-do-not-print"
	const token = "pss_service:v2:" + "aa11" + "deadbeef"
	sec := Secret{Key: "DB_PASSWORD", Value: value, Source: "phase:/"}
	res := &PhaseResult{Secrets: []Secret{sec}, App: "shop"}
	opts := PhaseOptions{Token: token, Host: "https://phase.example", App: "shop"}
	type holder struct {
		S   Secret
		Ptr *Secret
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for i, arg := range []any{sec, &sec, []Secret{sec}, res, *res, opts, &opts, holder{sec, &sec}, map[string]Secret{"k": sec}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, "hunter2") || strings.Contains(out, "deadbeef") {
				t.Errorf("%s of argument %d (%T) prints a value or the token", verb, i, arg)
			}
		}
	}
	if got := fmt.Sprint(sec); got != "{DB_PASSWORD <20 bytes> phase:/}" {
		t.Errorf("Sprint(secret) = %q", got)
	}
	if got := fmt.Sprintf("%+v", opts); !strings.Contains(got, "Host:https://phase.example") || !strings.Contains(got, "<redacted token, 27 bytes>") {
		t.Errorf("options lose their other fields: %q", got)
	}
}
