package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
)

// offlinePrinter prints the offline commands' results in etcdutl's
// formats (-w simple|table|json|fields; protobuf is refused, as etcdutl
// refuses it).
type offlinePrinter struct{ format string }

// errUnsupportedFormat is an output format etcdutl knows but cannot print
// these results in.
type errUnsupportedFormat struct{ format string }

func (e errUnsupportedFormat) Error() string { return e.format + " not supported as output format" }

func newOfflinePrinter(format string) (offlinePrinter, error) {
	switch format {
	case "simple", "table", "json", "fields", "protobuf":
		return offlinePrinter{format}, nil
	}
	return offlinePrinter{}, errors.New("unsupported output format")
}

// printerFromCmd returns the printer for --write-out, or exits as etcdutl
// does on a format it does not know.
func printerFromCmd(cmd *cobra.Command) offlinePrinter {
	format, err := cmd.Flags().GetString("write-out")
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitError, err)
	}
	p, err := newOfflinePrinter(format)
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitBadFeature, err)
	}
	return p
}

// exitOnPrintError exits as etcdutl does when the format cannot print.
func exitOnPrintError(err error) {
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitBadFeature, err)
	}
}

func (p offlinePrinter) dbStatus(w io.Writer, ds dbStatus) error {
	hdr := []string{"hash", "revision", "total keys", "total size", "version"}
	row := []string{fmt.Sprintf("%x", ds.Hash), fmt.Sprint(ds.Revision), fmt.Sprint(ds.TotalKey), humanize.Bytes(uint64(ds.TotalSize)), ds.Version}
	fields := [][2]any{{"Hash", ds.Hash}, {"Revision", ds.Revision}, {"Keys", ds.TotalKey}, {"Size", ds.TotalSize}, {"Version", ds.Version}}
	return p.print(w, hdr, row, fields, ds)
}

// hashKVResult is hashkv's result, with etcdutl's JSON names.
type hashKVResult struct {
	Hash            uint32 `json:"hash"`
	HashRevision    int64  `json:"hashRevision"`
	CompactRevision int64  `json:"compactRevision"`
}

func (p offlinePrinter) hashKV(w io.Writer, h hashKVResult) error {
	hdr := []string{"hash", "hash revision", "compact revision"}
	row := []string{fmt.Sprint(h.Hash), fmt.Sprint(h.HashRevision), fmt.Sprint(h.CompactRevision)}
	fields := [][2]any{{"Hash", h.Hash}, {"Hash revision", h.HashRevision}, {"Compact revision", h.CompactRevision}}
	return p.print(w, hdr, row, fields, h)
}

func (p offlinePrinter) print(w io.Writer, hdr, row []string, fields [][2]any, v any) error {
	switch p.format {
	case "simple":
		_, err := fmt.Fprintln(w, strings.Join(row, ", "))
		return err
	case "table":
		cfg := tablewriter.NewConfigBuilder().WithRowAlignment(tw.AlignRight).Build()
		t := tablewriter.NewTable(w, tablewriter.WithConfig(cfg))
		t.Header(hdr)
		if err := t.Append(row); err != nil {
			return err
		}
		return t.Render()
	case "json":
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "fields":
		for _, f := range fields {
			if _, err := fmt.Fprintln(w, fmt.Sprintf("%q :", f[0]), f[1]); err != nil {
				return err
			}
		}
		return nil
	}
	return errUnsupportedFormat{p.format}
}
