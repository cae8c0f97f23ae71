package phasetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// awsLogin builds a login body signed for principal p at t, then lets mutate
// change any part before encoding.
func awsLogin(t testing.TB, accountID string, p AWSPrincipal, stsURL string, at time.Time, mutate func(headers map[string]string, req map[string]any)) []byte {
	t.Helper()
	u, _ := url.Parse(stsURL)
	body := []byte("Action=GetCallerIdentity&Version=2011-06-15")
	amzDate := at.UTC().Format("20060102T150405Z")
	headers := map[string]string{
		"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
		"X-Amz-Date":   amzDate,
	}
	names := []string{"content-type", "host", "x-amz-date"}
	if p.SessionToken != "" {
		headers["X-Amz-Security-Token"] = p.SessionToken
		names = append(names, "x-amz-security-token")
	}
	scope := []string{p.AccessKeyID, amzDate[:8], "us-east-1", "sts", "aws4_request"}
	sig, _ := sigV4Signature(p.SecretAccessKey, u, headers, body, names, amzDate, scope)
	headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" + strings.Join(scope, "/") + ", SignedHeaders=" + strings.Join(names, ";") + ", Signature=" + sig
	b64 := base64.StdEncoding.EncodeToString
	req := map[string]any{
		"account": map[string]any{"type": "service", "id": accountID},
		"awsIam": map[string]any{
			"httpRequestMethod": "POST",
			"httpRequestUrl":    b64([]byte(stsURL)),
			"httpRequestBody":   b64(body),
		},
	}
	if mutate != nil {
		mutate(headers, req)
	}
	hj, _ := json.Marshal(headers)
	aws := req["awsIam"].(map[string]any)
	if _, ok := aws["httpRequestHeaders"]; !ok {
		aws["httpRequestHeaders"] = b64(hj)
	}
	out, _ := json.Marshal(req)
	return out
}

func TestAWSIAMEndpoint(t *testing.T) {
	s := New(Fixture{Apps: []App{{Name: "shop", Envs: []Env{{Name: "Production", Secrets: []Secret{{Key: "A", Value: "1"}}}}}}})
	defer s.Close()
	p := AWSPrincipal{AccessKeyID: "ASIATEST", SecretAccessKey: "test-secret", SessionToken: "test-session", ARN: "arn:aws:sts::123456789012:assumed-role/task/abc"}
	logins := s.EnableAWSIAM(AWSIAM{App: "shop", Principals: []AWSPrincipal{p}, TrustedPrincipals: []string{"arn:aws:sts::123456789012:assumed-role/task/*"}})
	id := s.AccountID("shop", ServiceV2)
	now := time.Now()
	const sts = "https://sts.amazonaws.com"
	tests := []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"ok", awsLogin(t, id, p, sts, now, nil), 200, ""},
		{"ok with ttl", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["tokenRequest"] = map[string]any{"ttl": 60} }), 200, ""},
		{"invalid json", []byte("{"), 400, "Invalid JSON"},
		{"user account", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["account"] = map[string]any{"type": "user", "id": id} }), 400, "account.type"},
		{"bad base64", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["awsIam"].(map[string]any)["httpRequestUrl"] = "%%%" }), 400, "Invalid awsIam request encoding"},
		{"headers not an object", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) {
			r["awsIam"].(map[string]any)["httpRequestHeaders"] = base64.StdEncoding.EncodeToString([]byte(`["x"]`))
		}), 400, "Invalid awsIam request encoding"},
		{"no date", awsLogin(t, id, p, sts, now, func(h map[string]string, _ map[string]any) { delete(h, "X-Amz-Date") }), 400, "Missing X-Amz-Date"},
		{"bad date", awsLogin(t, id, p, sts, now, func(h map[string]string, _ map[string]any) { h["X-Amz-Date"] = "yesterday" }), 400, "Invalid X-Amz-Date"},
		{"unknown account", awsLogin(t, "nope", p, sts, now, nil), 404, "Service account not found"},
		{"stale", awsLogin(t, id, p, sts, now.Add(-61*time.Second), nil), 401, "Signature expired"},
		{"future", awsLogin(t, id, p, sts, now.Add(61*time.Second), nil), 401, "Signature expired"},
		{"other host", awsLogin(t, id, p, "https://sts.eu-west-1.amazonaws.com", now, nil), 400, "STS endpoint mismatch"},
		{"host header", awsLogin(t, id, p, sts, now, func(h map[string]string, _ map[string]any) { h["Host"] = "evil.example" }), 400, "STS endpoint mismatch"},
		{"tampered signature", awsLogin(t, id, p, sts, now, func(h map[string]string, _ map[string]any) { h["Content-Type"] = "text/plain" }), 401, "AWS STS validation failed"},
		{"wrong session token", awsLogin(t, id, p, sts, now, func(h map[string]string, _ map[string]any) { h["X-Amz-Security-Token"] = "other" }), 401, "AWS STS validation failed"},
		{"get method", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["awsIam"].(map[string]any)["httpRequestMethod"] = "GET" }), 401, "AWS STS validation failed"},
		{"unknown key", awsLogin(t, id, AWSPrincipal{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}, sts, now, nil), 401, "AWS STS validation failed"},
		{"ttl too long", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["tokenRequest"] = map[string]any{"ttl": 86401} }), 400, "TTL"},
		{"ttl zero", awsLogin(t, id, p, sts, now, func(_ map[string]string, r map[string]any) { r["tokenRequest"] = map[string]any{"ttl": 0} }), 400, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(s.URL()+AWSIAMPath, "application/json", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%d-byte body)", resp.StatusCode, tt.status, len(body))
			}
			var got struct {
				Error          string `json:"error"`
				Authentication struct {
					TokenType, Token, BearerToken string
				} `json:"authentication"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if tt.status != 200 {
				if !strings.Contains(got.Error, tt.msg) {
					t.Errorf("error %q, want %q", got.Error, tt.msg)
				}
				return
			}
			a := got.Authentication
			if a.TokenType != "ServiceAccount" || !strings.HasPrefix(a.Token, "pss_service:v2:") || a.BearerToken != "ServiceAccount "+strings.Split(a.Token, ":")[2] {
				t.Errorf("authentication has the wrong shape (type %q, token %d bytes)", a.TokenType, len(a.Token))
			}
			if a.Token == s.Token("shop", ServiceV2) {
				t.Errorf("the standing token was returned instead of a minted one")
			}
		})
	}
	if ok, total := logins.Count(); ok != 2 || total != len(tests) {
		t.Errorf("logins %d ok of %d, want 2 of %d", ok, total, len(tests))
	}
}

func TestAWSIAMTrust(t *testing.T) {
	p := AWSPrincipal{AccessKeyID: "AKIAUSER", SecretAccessKey: "k", ARN: "arn:aws:iam::123456789012:user/ci"}
	for _, tt := range []struct {
		trusted []string
		keys    []string
		status  int
	}{
		{nil, nil, 200},
		{[]string{"arn:aws:iam::123456789012:user/*"}, nil, 200},
		{[]string{"arn:aws:iam::123456789012:user/c?"}, nil, 200},
		{[]string{"arn:aws:iam::*:user/ci"}, []string{"AKIAUSER"}, 200},
		{[]string{"arn:aws:iam::123456789012:role/*"}, nil, 403},
		{nil, []string{"AKIAOTHER"}, 403},
		{[]string{"*"}, nil, 400},
	} {
		s2 := New(Fixture{Apps: []App{{Name: "shop", Envs: []Env{{Name: "Production"}}}}})
		s2.EnableAWSIAM(AWSIAM{App: "shop", Principals: []AWSPrincipal{p}, TrustedPrincipals: tt.trusted, TrustedAccessKeys: tt.keys})
		resp, err := http.Post(s2.URL()+AWSIAMPath, "application/json", bytes.NewReader(awsLogin(t, s2.AccountID("shop", ServiceV2), p, "https://sts.amazonaws.com", time.Now(), nil)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("trusted %v keys %v: status %d, want %d", tt.trusted, tt.keys, resp.StatusCode, tt.status)
		}
		s2.Close()
	}
}

func TestFnmatch(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"a*", "a/b/c", true},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"arn:*:role/x", "arn:aws:iam::1:role/x", true},
		{"abc", "abcd", false},
		{"*d", "abc", false},
	} {
		if got := fnmatch(tt.p, tt.s); got != tt.want {
			t.Errorf("fnmatch(%q, %q) = %t", tt.p, tt.s, got)
		}
	}
}

// FuzzAWSIAMLogin: any body gets a JSON answer, never a panic, and only a
// correctly signed request can succeed.
func FuzzAWSIAMLogin(f *testing.F) {
	s := New(Fixture{Apps: []App{{Name: "shop", Envs: []Env{{Name: "Production"}}}}})
	defer s.Close()
	p := AWSPrincipal{AccessKeyID: "AKIAFUZZ", SecretAccessKey: "fuzz-secret", ARN: "arn:aws:iam::1:user/fuzz"}
	c := AWSIAM{App: "shop", Principals: []AWSPrincipal{p}, STSEndpoint: "https://sts.amazonaws.com", SignatureTTL: time.Minute, DefaultTTL: 60, MaxTTL: 120, Now: time.Now}
	f.Add(awsLogin(f, s.AccountID("shop", ServiceV2), p, "https://sts.amazonaws.com", time.Now(), nil))
	f.Add([]byte(`{"account":{"type":"service","id":"x"},"awsIam":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest(http.MethodPost, AWSIAMPath, bytes.NewReader(body))
		status, _ := s.awsIAMLogin(c, &AWSIAMLogins{}, r)
		if status == 0 {
			t.Fatal("no status")
		}
	})
}
