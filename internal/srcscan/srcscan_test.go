package srcscan

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestExportedErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", `package p

import "errors"

var ErrB = errors.New("b")

var (
	ErrA, errHidden = errors.New("a"), errors.New("h")
	Other           = 1
)

const ErrConst = "not a var"
`)
	write("a_test.go", "package p\n\nimport \"errors\"\n\nvar ErrTestOnly = errors.New(\"t\")\n")
	got, err := ExportedErrors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ErrA", "ErrB"}; !slices.Equal(got, want) {
		t.Fatalf("ExportedErrors = %v, want %v", got, want)
	}
}

func TestTableRows(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.go")
	src := `package p

var list = []error{a.ErrX, ErrY}

var table = []struct{ err, grpc error }{
	{a.ErrX, b.ErrGRPCX},
	{ErrY, b.ErrGRPCY},
}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"list": {"a.ErrX", "ErrY"}, "table": {"a.ErrX", "ErrY"}} {
		got, err := TableRows(file, name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("TableRows(%s) = %v, want %v", name, got, want)
		}
	}
	if _, err := TableRows(file, "missing"); err == nil {
		t.Error("TableRows of a missing variable: no error")
	}
}
