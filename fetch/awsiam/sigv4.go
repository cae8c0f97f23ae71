// Package awsiam logs in to Phase with AWS IAM: it finds AWS credentials the
// way the AWS SDKs do (environment, web identity, ECS task role, container
// full URI, EC2 IMDSv2), signs an STS GetCallerIdentity request with SigV4
// and trades that unsent request for a short-lived Phase service-account
// token. Standard library only: the AWS SDK would add megabytes to a binary
// whose job is to stay small.
//
// Nothing here prints or exits. AWS secret keys, session tokens and the
// minted Phase token never appear in an error or a debug line.
package awsiam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Credentials are one set of AWS keys. SessionToken is empty for long-term
// IAM user keys and set for everything a role hands out.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time // zero when the source gave no expiry
}

// String keeps the secret parts out of any accidental %v.
func (c Credentials) String() string {
	return fmt.Sprintf("aws credentials (access key %s, session token %t)", c.AccessKeyID, c.SessionToken != "")
}

// GoString covers %#v, which would otherwise print every field.
func (c Credentials) GoString() string { return c.String() }

const (
	amzDateFormat  = "20060102T150405Z"
	sigv4Algorithm = "AWS4-HMAC-SHA256"
)

// signOptions select between the two header sets real clients sign.
type signOptions struct {
	// signContentLength adds content-length to the signed headers when the
	// body is non-empty, as aws-sdk-go-v2 does; botocore leaves it out.
	signContentLength bool
}

// unsignedHeaders are never signed: proxies and transports may add or change
// them on the way (the same list aws-sdk-go-v2 keeps).
var unsignedHeaders = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
	"content-length":    true, // handled explicitly through signOptions
}

// sign adds X-Amz-Date, X-Amz-Security-Token (for temporary credentials) and
// Authorization to req. body must be the exact bytes that will be sent; the
// caller keeps them because an http.Request body can be read only once. The
// canonical request and string to sign are returned for tests.
func sign(req *http.Request, body []byte, c Credentials, region, service string, now time.Time, o signOptions) (creq, sts string) {
	now = now.UTC()
	amzDate := now.Format(amzDateFormat)
	req.Header.Set("X-Amz-Date", amzDate)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	headers := canonicalHeaderList(req, len(body), o)
	sum := sha256.Sum256(body)
	creq, signed := canonicalRequest(req.Method, req.URL, headers, hex.EncodeToString(sum[:]))
	scope := credentialScope(now, region, service)
	sts = stringToSign(amzDate, scope, creq)
	sig := hex.EncodeToString(hmacSHA256(signingKey(c.SecretAccessKey, now.Format("20060102"), region, service), []byte(sts)))
	req.Header.Set("Authorization", sigv4Algorithm+" Credential="+c.AccessKeyID+"/"+scope+", SignedHeaders="+signed+", Signature="+sig)
	return creq, sts
}

// header is one canonical header: lower-case name and its canonical value.
type header struct{ name, value string }

// canonicalHeaderList picks the headers to sign from req: every header Go
// keeps in req.Header except the unsigned ones, plus host (Go keeps it
// outside Header) and, when asked, content-length.
func canonicalHeaderList(req *http.Request, bodyLen int, o signOptions) []header {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	hs := []header{{"host", canonicalHostValue(req.URL.Scheme, host)}}
	if o.signContentLength && bodyLen > 0 {
		hs = append(hs, header{"content-length", strconv.Itoa(bodyLen)})
	}
	for name, values := range req.Header {
		lname := strings.ToLower(name)
		if unsignedHeaders[lname] || lname == "host" {
			continue
		}
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = canonicalValue(v)
		}
		hs = append(hs, header{lname, strings.Join(vs, ",")})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].name < hs[j].name })
	return hs
}

// canonicalHostValue drops a default port, as the SDKs do: the Host header
// Go sends for https://h:443/ is "h:443" but AWS computes the signature over
// the host STS sees after normalisation.
func canonicalHostValue(scheme, host string) string {
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(port, ":") {
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			return h
		}
	}
	return host
}

// canonicalValue trims a header value and collapses runs of spaces, the
// SigV4 rule for header values.
func canonicalValue(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// canonicalRequest returns the canonical request text and the signed-headers
// list. headers must be sorted by name.
func canonicalRequest(method string, u *url.URL, headers []header, payloadHash string) (string, string) {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(u))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(u.RawQuery))
	b.WriteByte('\n')
	names := make([]string, len(headers))
	for i, h := range headers {
		names[i] = h.name
		b.WriteString(h.name)
		b.WriteByte(':')
		b.WriteString(h.value)
		b.WriteByte('\n')
	}
	signed := strings.Join(names, ";")
	b.WriteByte('\n')
	b.WriteString(signed)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), signed
}

// canonicalURI encodes the already-escaped path once more: for every service
// but S3, SigV4 signs the path double-encoded.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

// canonicalQuery sorts the query by encoded name, then value.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		// Undo the client's encoding so every pair is re-encoded the one way
		// SigV4 accepts; an undecodable pair is signed as sent.
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		pairs = append(pairs, kv{uriEncode(k, true), uriEncode(v, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// uriEncode is RFC 3986 percent-encoding with upper-case hex, leaving only
// the unreserved characters (and '/' when encodeSlash is false).
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

func credentialScope(t time.Time, region, service string) string {
	return t.UTC().Format("20060102") + "/" + region + "/" + service + "/aws4_request"
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return sigv4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}
