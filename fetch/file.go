package fetch

import (
	"fmt"
	"io"
	"os"
)

// maxFileSize bounds what ReadFile reads: a secrets file is kilobytes, and
// --env-file /dev/zero must not eat the memory of a small container.
const maxFileSize = 64 << 20

// ReadFile reads an --env-file: a JSON object of strings when its first byte
// that is neither a blank nor the UTF-8 BOM is '{', otherwise dotenv (see
// ParseDotenv). A dotenv file could only start with '{' if its first key
// did, a name no shell or app uses, so sniffing needs no flag. Each secret's
// Source is "file:<path>".
//
// A file that cannot be opened or read is ErrConfig (the command line names
// something that is not there); one that cannot be parsed is ErrData.
func ReadFile(path string) ([]Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: env file: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: env file: %w", ErrConfig, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d MiB", ErrData, path, maxFileSize>>20)
	}
	if looksLikeJSON(data) {
		return ParseJSON(path, data)
	}
	return ParseDotenv(path, data)
}

func looksLikeJSON(data []byte) bool {
	for _, c := range trimBOM(data) {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}
