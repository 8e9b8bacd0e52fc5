package linearizability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/anishathalye/porcupine"
)

// line is the JSON form of one operation: one object per line, e.g.
//
//	{"client":0,"call":10,"return":20,"op":{"kind":"get","key":"a"},"resp":{"found":true,"value":"1"}}
type line struct {
	Client int      `json:"client"`
	Call   int64    `json:"call"`
	Return int64    `json:"return"`
	Op     Op       `json:"op"`
	Resp   Response `json:"resp"`
}

// WriteHistory writes history to w as JSON lines, one operation per line, so that a failing
// run can be checked again offline with ReadHistory. Every input must be an Op and every
// output a Response.
func WriteHistory(w io.Writer, history []porcupine.Operation) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i, o := range history {
		op, ok := o.Input.(Op)
		if !ok {
			return fmt.Errorf("%w: operation %d: input is %T, not linearizability.Op", ErrInvalidHistory, i, o.Input)
		}
		resp, ok := o.Output.(Response)
		if !ok {
			return fmt.Errorf("%w: operation %d: output is %T, not linearizability.Response", ErrInvalidHistory, i, o.Output)
		}
		if err := enc.Encode(line{Client: o.ClientId, Call: o.Call, Return: o.Return, Op: op, Resp: resp}); err != nil {
			return fmt.Errorf("linearizability: write history: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("linearizability: write history: %w", err)
	}
	return nil
}

// ReadHistory reads a history written by WriteHistory. Blank lines are skipped; a malformed
// line is an error naming its line number.
func ReadHistory(r io.Reader) ([]porcupine.Operation, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	var h []porcupine.Operation
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l line
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("linearizability: read history line %d: %w", n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("linearizability: read history line %d: trailing data after the operation", n)
		}
		h = append(h, porcupine.Operation{ClientId: l.Client, Input: l.Op, Call: l.Call, Output: l.Resp, Return: l.Return})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("linearizability: read history: %w", err)
	}
	return h, nil
}

// SaveHistory writes history to the file at path (see WriteHistory).
func SaveHistory(path string, history []porcupine.Operation) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("linearizability: save history: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("linearizability: save history: %w", cerr)
		}
	}()
	return WriteHistory(f, history)
}

// LoadHistory reads the history in the file at path (see ReadHistory).
func LoadHistory(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("linearizability: load history: %w", err)
	}
	defer f.Close()
	h, err := ReadHistory(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
