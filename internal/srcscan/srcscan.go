// Package srcscan reads Go sources for facts that tests keep whole: today,
// the exported error variables of a package, so that a table of errors can
// be checked to cover every one (api's error table, node's apply
// classification).
package srcscan

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ExportedErrors returns the exported package-level variables named Err*
// declared in the non-test Go files of dir, sorted.
func ExportedErrors(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(id.Name, "Err") && id.IsExported() {
						out = append(out, id.Name)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// TableRows returns the rows of the package-level composite literal
// variable name declared in file, each rendered as source: an element that
// is itself a composite literal (a struct row) is rendered by its first
// field, any other element as it is. "mvcc.ErrCompacted" in a []error, or
// {mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted} in a table of structs,
// both give "mvcc.ErrCompacted".
func TableRows(file, name string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if id.Name != name || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.CompositeLit)
				if !ok {
					return nil, fmt.Errorf("%s: %s is not a composite literal", file, name)
				}
				var out []string
				for _, elt := range lit.Elts {
					if row, ok := elt.(*ast.CompositeLit); ok && len(row.Elts) > 0 {
						elt = row.Elts[0]
					}
					var b bytes.Buffer
					if err := printer.Fprint(&b, fset, elt); err != nil {
						return nil, err
					}
					out = append(out, b.String())
				}
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: no variable %s", file, name)
}
