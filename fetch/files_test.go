package fetch

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/phase-shim/phase-shim/internal/secretdiff"
)

// fileSecretView is what a test failure may show of a secret: never the value.
type fileSecretView struct {
	Key    string
	Source string
	Size   int
}

func fileView(s []Secret) []fileSecretView {
	out := make([]fileSecretView, len(s))
	for i, x := range s {
		out[i] = fileSecretView{x.Key, x.Source, len(x.Value)}
	}
	return out
}

// checkFileSecrets compares names, sources and sizes with go-cmp, then the
// values byte by byte, reporting only where they differ.
func checkFileSecrets(t *testing.T, got, want []Secret) {
	t.Helper()
	if diff := cmp.Diff(fileView(want), fileView(got)); diff != "" {
		t.Errorf("keys/sources/sizes (-want +got):\n%s", diff)
		return
	}
	for i := range want {
		if got[i].Value != want[i].Value {
			t.Errorf("%q: %s", want[i].Key, secretdiff.Describe(got[i].Value, want[i].Value))
		}
	}
}

func pairs(source string, kv ...string) []Secret {
	out := []Secret{}
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Secret{Key: kv[i], Value: kv[i+1], Source: source})
	}
	return out
}

func TestParseDotenv(t *testing.T) {
	const src = "file:t.env"
	tests := []struct {
		name string
		in   string
		want []Secret
	}{
		{"plain", "A=b", pairs(src, "A", "b")},
		{"export prefix", "export A=b\nexport\tB=c", pairs(src, "A", "b", "B", "c")},
		{"key named export", "export=1\nexportX=2", pairs(src, "export", "1", "exportX", "2")},
		{"spaces around =", "  A = b  ", pairs(src, "A", "b")},
		{"empty", "A=\nB=''\nC=\"\"", pairs(src, "A", "", "B", "", "C", "")},
		{"empty at EOF", "A=", pairs(src, "A", "")},
		{"inline comment", "A=b # c", pairs(src, "A", "b")},
		{"hash without space", "A=b# c", pairs(src, "A", "b# c")},
		{"tab before hash is not a comment (compose cuts at \" #\")", "A=b\t# c", pairs(src, "A", "b\t# c")},
		{"value starting with hash", "A=#x\nB= # y", pairs(src, "A", "#x", "B", "# y")},
		{"comments and blanks", "# top\n\n   # indented\nA=1 \n\n#B=2\n", pairs(src, "A", "1")},
		{"unquoted keeps quotes and backslashes", `A=a"b'c\n`, pairs(src, "A", `a"b'c\n`)},
		{"unquoted trims unicode space", "A=b\u00a0\u2003", pairs(src, "A", "b")},
		{"single quotes literal", `A='$OTHER ${OTHER} \t \\'`, pairs(src, "A", `$OTHER ${OTHER} \t \\`)},
		{"single escaped quote", `A='Let\'s go!'`, pairs(src, "A", "Let's go!")},
		{"single multi-line", "A='l1\nl2\n'\nB=x", pairs(src, "A", "l1\nl2\n", "B", "x")},
		{"double json", `A="{\"hello\": \"json\"}"`, pairs(src, "A", `{"hello": "json"}`)},
		{"double escapes", `A="t\tn\nr\rbs\\q\"d\$"`, pairs(src, "A", "t\tn\nr\rbs\\q\"d$")},
		{"double bell etc", `A="\a\b\f\v"`, pairs(src, "A", "\a\b\f\v")},
		{"double unknown escape stays", `A="\q\c\x41\'"`, pairs(src, "A", `\q\c\x41\'`)},
		{"double octal", `A="\0101\0377"`, pairs(src, "A", "Aÿ")},
		{"double short octal loses its 0 (as compose)", `A="\01\012x\0"`, pairs(src, "A", `\1\12x\`)},
		{"double octal with 8 loses its 0", `A="\0128"`, pairs(src, "A", `\128`)},
		{"double escaped backslash then quote", `A="a\\\"b\\"`, pairs(src, "A", `a\"b\`)},
		{"double no interpolation", `A="$HOME ${HOME} $$"`, pairs(src, "A", "$HOME ${HOME} $$")},
		{"unquoted no interpolation", `A=$HOME${X}$$`, pairs(src, "A", "$HOME${X}$$")},
		{"double multi-line", "A=\"l1\nl2\"\nB=2", pairs(src, "A", "l1\nl2", "B", "2")},
		{"comment after quote", "A=\"x # in\" # out\nB='y'# out", pairs(src, "A", "x # in", "B", "y")},
		{"blank after quote", "A=\"x\"   \t\nB=1", pairs(src, "A", "x", "B", "1")},
		{"crlf", "A=b\r\nB=\"c\"\r\nC='d'\r\n\r\n# x\r\nD=\r\n", pairs(src, "A", "b", "B", "c", "C", "d", "D", "")},
		{"crlf inside quotes is kept (as compose)", "A=\"x\r\ny\"\r\n", pairs(src, "A", "x\r\ny")},
		{"bom", "\ufeffA=b", pairs(src, "A", "b")},
		{"unicode space before a statement", "\u00a0\u3000A=b\n\u2003# c", pairs(src, "A", "b")},
		{"duplicate: first position, last value", "A=1\nB=2\nA=3", pairs(src, "A", "3", "B", "2")},
		{"hostile names", "SECRET_KEY?=1\nmy-key=2\na.b=3\n1PASS=4\nÜBER=5\nA#B=6",
			pairs(src, "SECRET_KEY?", "1", "my-key", "2", "a.b", "3", "1PASS", "4", "ÜBER", "5", "A#B", "6")},
		{"equals in value", "A=b=c==\nB=\"=\"", pairs(src, "A", "b=c==", "B", "=")},
		{"invalid utf-8 kept", "A=\xff\xfe\nB=\"\xc3\"", pairs(src, "A", "\xff\xfe", "B", "\xc3")},
		{"nothing", "", nil},
		{"only comments", "# a\n#b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv("t.env", []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseDotenv: %v", err)
			}
			checkFileSecrets(t, got, tt.want)
		})
	}
}

// The canary stands for a secret: no error may show it.
const canary = "C4NARY"

func TestParseDotenvErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line string
	}{
		{"no equals", "A=1\n" + canary, "t.env:2:"},
		{"blank in key", "A " + canary + "=1", "t.env:1:"},
		{"empty key", "=" + canary, "t.env:1:"},
		{"export without key", "export =" + canary, "t.env:1:"},
		{"quote in key", `"A"=` + canary, "t.env:1:"},
		{"unicode blank in key", "A\u00a0B=" + canary, "t.env:1:"},
		{"unterminated double", "X=1\nA=\"" + canary + "\nmore", "t.env:2:"},
		{"unterminated single", "A='" + canary, "t.env:1:"},
		{"escaped closing quote", `A="` + canary + `\"`, "t.env:1:"},
		{"backslash at end", `A="` + canary + `\`, "t.env:1:"},
		{"text after quote", "A=\"" + canary + "\" " + canary, "t.env:1:"},
		{"text after multi-line quote", "A='a\nb'" + canary, "t.env:2:"},
		{"phase export of a quoted value", `A="say "` + canary + `""`, "t.env:1:"},
		{"line after multi-line value", "A=\"1\n2\n3\"\n" + canary, "t.env:4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDotenv("t.env", []byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrData) {
				t.Errorf("error does not wrap ErrData: %v", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error shows file text (%d bytes of message)", len(err.Error()))
			}
			if !strings.Contains(err.Error(), tt.line) {
				t.Errorf("error %q does not name %q", err, tt.line)
			}
		})
	}
}

// phaseCorpus is the corpus testdata/phase_export.{json,env} were made from
// with Python: json.dumps(d, indent=4) and print(f'{key}="{value}"'), the
// two lines `phase secrets export` runs.
var phaseCorpus = []string{
	"SECRET_KEY?", "s3cr3t",
	"my-key", "with spaces  inside",
	"a.b", `it's "quoted"`,
	"1PASS", "$HOME and ${HOME}",
	"ÜBER", "`backticks` * # = ;",
	"MULTI", "line1\nline2\n",
	"TABS", "a\tb\t",
	"TRAIL", "trailing   ",
	"EMOJI", "🔐 ключ 鍵",
	"EMPTY", "",
	"BACKSLASH", `C:\path\n\t`,
	"HTML", "<a href='x'>&amp;</a>",
	"BIG", strings.Repeat("x", 100000),
}

func TestReadFilePhaseJSONExport(t *testing.T) {
	path := filepath.Join("testdata", "phase_export.json")
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkFileSecrets(t, got, pairs("file:"+path, phaseCorpus...))
}

// Phase's dotenv export does not escape. Wherever the value holds neither '"'
// nor '\', the two dialects agree, and the file reads back exactly.
func TestReadFilePhaseDotenvExport(t *testing.T) {
	path := filepath.Join("testdata", "phase_export.env")
	var want []string
	for i := 0; i < len(phaseCorpus); i += 2 {
		if !strings.ContainsAny(phaseCorpus[i+1], `"\`) {
			want = append(want, phaseCorpus[i], phaseCorpus[i+1])
		}
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkFileSecrets(t, got, pairs("file:"+path, want...))
}

// Where the dialects disagree: Phase writes a backslash raw, the compose
// dialect decodes it; a raw '"' usually ends the value early and is then an
// error (it can also start an inline comment, which no reader can tell).
func TestParseDotenvPhaseDisagreements(t *testing.T) {
	got, err := ParseDotenv("p.env", []byte(`A="C:\new"`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkFileSecrets(t, got, pairs("file:p.env", "A", "C:\new"))
	for _, v := range []string{`say "hi"`, `end"`, `"start`} {
		if _, err := ParseDotenv("p.env", []byte(`A="`+v+`"`+"\n")); err == nil {
			t.Errorf("value of %d bytes with a quote: no error", len(v))
		}
	}
}

func TestParseJSON(t *testing.T) {
	const src = "file:t.json"
	tests := []struct {
		name string
		in   string
		want []Secret
	}{
		{"empty object", "{}", []Secret{}},
		{"blanks and bom", "\ufeff \n{ \"A\" : \"b\" ,\r\n\t\"C\":\"d\" }\n\n", pairs(src, "A", "b", "C", "d")},
		{"escapes", `{"A":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\udd10"}`, pairs(src, "A", "\"\\/\b\f\n\r\tAé€🔐")},
		{"go html escapes", `{"A":"\u003c\u003e\u0026"}`, pairs(src, "A", "<>&")},
		{"nul is carried", `{"A":"a\u0000b"}`, pairs(src, "A", "a\x00b")},
		{"raw utf-8 and dollar", `{"ÜBER":"$HOME 鍵 🔐"}`, pairs(src, "ÜBER", "$HOME 鍵 🔐")},
		{"duplicate: first position, last value", `{"A":"1","B":"2","A":"3"}`, pairs(src, "A", "3", "B", "2")},
		{"escaped key", `{"\u0041\u002dB":"x"}`, pairs(src, "A-B", "x")},
		{"replacement char is fine", `{"A":"\ufffd"}`, pairs(src, "A", "\ufffd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJSON("t.json", []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			checkFileSecrets(t, got, tt.want)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // a part of the message
	}{
		{"nested object", `{"A":"` + canary + `",` + "\n" + `"NESTED":{"x":"` + canary + `"}}`, `t.json:2: key "NESTED": value is an object`},
		{"array", `{"ARR":["` + canary + `"]}`, `key "ARR": value is an array`},
		{"number", `{"N":1}`, `key "N": value is a number`},
		{"bool", `{"B":true}`, `key "B": value is a boolean`},
		{"null", `{"Z":null}`, `key "Z": value is null`},
		{"top-level array", `["` + canary + `"]`, "t.json:1: want a JSON object"},
		{"empty file", ``, "want a JSON object"},
		{"trailing text", `{"A":"` + canary + `"} ` + canary, "after the closing"},
		{"trailing comma", `{"A":"` + canary + `",}`, "want a string key"},
		{"missing comma", `{"A":"` + canary + `" "B":"x"}`, `after key "A"`},
		{"unterminated", `{"A":"` + canary, `unterminated string in the value of key "A"`},
		{"raw newline in string", "{\"A\":\"" + canary + "\n\"}", "control character"},
		{"lone high surrogate", `{"A":"` + canary + `\ud83d"}`, `lone UTF-16 surrogate in the value of key "A"`},
		{"lone low surrogate", `{"A":"` + canary + `\udd10"}`, "lone UTF-16 surrogate"},
		{"high then non-low", `{"A":"` + canary + `\ud83d\u0041"}`, "lone UTF-16 surrogate"},
		{"bad escape", `{"A":"` + canary + `\x41"}`, "unknown escape"},
		{"bad hex", `{"A":"` + canary + `\u00g1"}`, `bad \u escape`},
		{"invalid utf-8", "{\"A\":\"" + canary + "\",\n\"B\":\"\xff\"}", "t.json:2: not valid UTF-8"},
		{"single quotes", `{'A':'` + canary + `'}`, "want a string key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON("t.json", []byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrData) {
				t.Errorf("error does not wrap ErrData: %v", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error shows file text (%d bytes of message)", len(err.Error()))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestReadFileSniffAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonPath := write("a.json", "\ufeff \n {\"A\":\"1\"}")
	got, err := ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	checkFileSecrets(t, got, pairs("file:"+jsonPath, "A", "1"))

	envPath := write("a.env", "# {\"A\":\"1\"}\nA={1}")
	got, err = ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	checkFileSecrets(t, got, pairs("file:"+envPath, "A", "{1}"))

	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrConfig) {
		t.Errorf("missing file: want ErrConfig, got %v", err)
	}
	if _, err := ReadFile(dir); !errors.Is(err, ErrConfig) {
		t.Errorf("directory: want ErrConfig, got %v", err)
	}
	bad := write("bad.json", `{"A":1}`)
	if _, err := ReadFile(bad); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("bad JSON: want ErrData naming %s:1:, got %v", bad, err)
	}
}

func FuzzParseDotenv(f *testing.F) {
	for _, s := range []string{
		"A=b", "export A='b'\n", "A=\"a\\nb\"\r\nB=c # d", "A=\"\\0101\\0\"", "\ufeff#x\nA=",
		"A='x", "A=\"x\" y", "=x", "A", "A=\"\\", "A='\\''", "A=\"l1\nl2\"\nB=x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseDotenv("f.env", data)
		if err != nil {
			if !errors.Is(err, ErrData) {
				t.Fatalf("error does not wrap ErrData")
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range got {
			if p := dotenvKeyProblem(s.Key); p != "" {
				t.Fatalf("accepted a key the writer would refuse: %s", p)
			}
			if seen[s.Key] {
				t.Fatalf("key %q twice", s.Key)
			}
			seen[s.Key] = true
		}
	})
}

// FuzzParseJSON checks ParseJSON against encoding/json: whatever it accepts,
// encoding/json reads the same way; whatever encoding/json reads as an
// object of strings, it accepts too, except for the cases it refuses on
// purpose (null values and lone surrogates, which encoding/json turns into
// "" and U+FFFD).
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"A":"b"}`, `{"A":"\u00e9\ud83d\udd10","B":"\n"}`, `{"A":{"b":"c"}}`, `{"A":"1","A":"2"}`,
		`{"A":"\ud800"}`, `[]`, `{"A":null}`, "\ufeff{\"A\":\"b\"}", `{"A":"x"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseJSON("f.json", data)
		var std map[string]string
		stdErr := json.Unmarshal(trimBOM(data), &std)
		if err != nil {
			if !errors.Is(err, ErrData) {
				t.Fatalf("error does not wrap ErrData")
			}
			msg := err.Error()
			if stdErr == nil && std != nil && firstInvalidUTF8Line(data) == 0 &&
				!strings.Contains(msg, "surrogate") && !strings.Contains(msg, "null") {
				t.Fatalf("refused what encoding/json reads: %v", err)
			}
			return
		}
		if stdErr != nil {
			t.Fatalf("accepted what encoding/json refuses")
		}
		if len(got) != len(std) {
			t.Fatalf("got %d keys, encoding/json %d", len(got), len(std))
		}
		for _, s := range got {
			v, ok := std[s.Key]
			if !ok || v != s.Value {
				t.Fatalf("%q: differs from encoding/json (%d vs %d bytes)", s.Key, len(s.Value), len(v))
			}
		}
	})
}

// composeQuoted models how compose-go reads a quoted value, in its two
// passes: first only an escaped quote loses its backslash, then (in double
// quotes) the escapes matched by `\\(?:[abcfnrtv$"\\]|0\d{0,3})` are decoded
// with strconv.UnquoteChar, keeping any it cannot decode. Interpolation is
// left out: `\$` is taken as the "$" it ends up as. ParseDotenv does both
// passes in one; FuzzDotenvQuotedLikeCompose holds it to this model.
func composeQuoted(src string) (value string, rest string, ok bool) {
	q := src[0]
	var chars []byte
	escaped := false
	for i := 1; i < len(src); i++ {
		c := src[i]
		if escaped {
			escaped = false
			if c != q {
				chars = append(chars, '\\')
			}
			chars = append(chars, c)
			continue
		}
		switch c {
		case '\\':
			escaped = true
		case q:
			value = string(chars)
			if q == '"' {
				value = composeEscapes.ReplaceAllStringFunc(value, func(m string) string {
					if m == `\$` {
						return "$"
					}
					if strings.HasPrefix(m, `\0`) {
						m = `\` + m[2:]
					}
					r, _, _, err := strconv.UnquoteChar(m, '"')
					if err != nil {
						return m
					}
					return string(r)
				})
			}
			return value, src[i+1:], true
		default:
			chars = append(chars, c)
		}
	}
	return "", "", false
}

var composeEscapes = regexp.MustCompile(`\\(?:[abcfnrtv$"\\]|0\d{0,3})`)

func FuzzDotenvQuotedLikeCompose(f *testing.F) {
	for _, s := range []string{`"a\nb"`, `"\0101\0377\01\0128\0"`, `'\'\\'`, `"\\\"\$\q"`, `"\c\a"`, "'a\nb'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, quoted string) {
		if quoted == "" || (quoted[0] != '"' && quoted[0] != '\'') {
			return
		}
		want, rest, ok := composeQuoted(quoted)
		got, err := ParseDotenv("q.env", []byte("A="+quoted))
		if !ok {
			if err == nil {
				t.Fatalf("accepted an unterminated value")
			}
			return
		}
		if strings.TrimLeft(rest, " \t\r\v\f") != "" {
			return // text after the quote: an error here, a new statement in compose
		}
		if err != nil {
			t.Fatalf("refused a value compose reads: %v", err)
		}
		if len(got) != 1 || got[0].Value != want {
			t.Fatalf("differs from compose's reading: got %d secrets", len(got))
		}
	})
}
