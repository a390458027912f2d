package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestGzipJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sources", "gh", "data.json.gz") // the directories do not exist yet
	in := map[string][]int{"a": {1, 2}, "b": nil}
	data, err := GzipJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(path, data); err != nil {
		t.Fatal(err)
	}
	var out map[string][]int
	if err := ReadGzipJSON(path, &out); err != nil || len(out["a"]) != 2 || out["a"][1] != 2 {
		t.Fatalf("%v %v", out, err)
	}
	if err := ReadGzipJSON(path+".missing", &out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	os.WriteFile(path, []byte("not gzip"), 0o644)
	if err := ReadGzipJSON(path, &out); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a corrupt file: %v", err)
	}
}
