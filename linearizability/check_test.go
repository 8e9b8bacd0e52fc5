package linearizability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestWriteVisualizationOfFailingHistory(t *testing.T) {
	h := []porcupine.Operation{
		o(0, 0, 1, Put("x", "1"), written()),
		o(0, 2, 3, Put("x", "2"), written()),
		o(1, 4, 5, Get("x"), found("1")),
		u(2, 6, Delete("x")),
	}
	m := RegisterModel()
	res, err := Check(m, h, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != porcupine.Illegal || res.Ok() {
		t.Fatalf("outcome %s, want Illegal", res.Outcome)
	}
	path := filepath.Join(t.TempDir(), "failure.html")
	if err := WriteVisualization(path, m, res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"<html", `get(\"x\") → \"1\"`, `delete(\"x\") → unknown`} {
		if !strings.Contains(html, want) {
			t.Errorf("visualization (%d bytes) lacks %q", len(b), want)
		}
	}
}

func TestWriteVisualizationReportsUnwritablePath(t *testing.T) {
	res, err := Check(RegisterModel(), []porcupine.Operation{o(0, 0, 1, Get("x"), found("1"))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "no-such-dir", "v.html")
	if err := WriteVisualization(path, RegisterModel(), res); err == nil {
		t.Fatal("WriteVisualization into a missing directory succeeded")
	}
}
