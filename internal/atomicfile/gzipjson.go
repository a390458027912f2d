package atomicfile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
)

// GzipJSON returns v as gzip-compressed JSON, the form sources keep their
// own state in.
func GzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadGzipJSON decodes the gzip-compressed JSON file at path into v.
func ReadGzipJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	return json.NewDecoder(zr).Decode(v)
}

// DecodeGzipJSON decodes gzip-compressed JSON held in memory into v.
func DecodeGzipJSON(data []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return json.NewDecoder(zr).Decode(v)
}
