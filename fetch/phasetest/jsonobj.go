package phasetest

import (
	"bytes"
	"encoding/json"
	"strings"
)

// obj is a JSON object that keeps its field order, so responses look like
// the server's (DRF serialisers emit model field order) and so the same
// builder can emit snake_case or camelCase keys.
type obj []field

type field struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// namer turns the server's snake_case field names into the casing the
// client asked for.
type namer bool

func (camel namer) n(snake string) string {
	if !camel {
		return snake
	}
	parts := strings.Split(snake, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// o builds an obj from alternating snake_case names and values.
func (camel namer) o(kv ...any) obj {
	out := make(obj, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, field{camel.n(kv[i].(string)), kv[i+1]})
	}
	return out
}
