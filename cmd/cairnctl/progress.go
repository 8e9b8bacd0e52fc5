package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
)

// progress reports a long operation on w (stderr): bytes and keys
// processed. On a terminal it draws a bar; otherwise it prints a plain
// line at every tenth of the total (every progressKeysStep keys when the
// total is unknown) and one when done, so logs of scripted runs show how
// far an operation got.
type progress struct {
	w           io.Writer
	what        string
	total       int64 // bytes; 0 if unknown
	bar         *pb.ProgressBar
	bytes, keys int64
	nextLine    int64 // plain mode: the bytes (or keys) that print the next line
	start       time.Time
}

const progressKeysStep = 100_000

// startProgress starts reporting the operation what, of total bytes (0 if
// unknown), on w; nil w reports nothing.
func startProgress(w io.Writer, what string, total int64) *progress {
	p := &progress{w: w, what: what, total: total, start: time.Now()}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		tmpl := `{{string . "prefix"}} {{counters . }} {{bar . }} {{percent . }} {{string . "suffix"}}`
		if total <= 0 {
			tmpl = `{{string . "prefix"}} {{counters . }} {{string . "suffix"}}`
		}
		p.bar = pb.New64(total).SetWriter(w).Set(pb.Bytes, true).Set("prefix", what).SetTemplateString(tmpl)
		p.bar.SetRefreshRate(200 * time.Millisecond)
		p.bar.Start()
		return p
	}
	p.nextLine = p.step()
	return p
}

func (p *progress) step() int64 {
	if p.total > 0 {
		return max(p.total/10, 1)
	}
	return progressKeysStep
}

// set records that bytes and keys have been processed so far.
func (p *progress) set(bytes, keys int64) {
	p.bytes, p.keys = bytes, keys
	switch {
	case p.w == nil:
	case p.bar != nil:
		p.bar.SetCurrent(bytes)
		p.bar.Set("suffix", fmt.Sprintf("%d keys", keys))
	default:
		at := keys
		if p.total > 0 {
			at = bytes
		}
		if at >= p.nextLine && (p.total == 0 || bytes < p.total) {
			fmt.Fprintf(p.w, "%s: %s\n", p.what, p.counters())
			for p.nextLine <= at {
				p.nextLine += p.step()
			}
		}
	}
}

func (p *progress) counters() string {
	s := humanize.Bytes(uint64(p.bytes))
	if p.total > 0 {
		s = fmt.Sprintf("%s of %s (%d%%)", s, humanize.Bytes(uint64(p.total)), p.bytes*100/p.total)
	}
	if p.keys > 0 {
		s = fmt.Sprintf("%s, %d keys", s, p.keys)
	}
	return s
}

// done ends the report with the final counts.
func (p *progress) done() {
	switch {
	case p.w == nil:
		return
	case p.bar != nil:
		p.bar.SetTotal(max(p.total, p.bytes))
		p.bar.SetCurrent(p.bytes)
		p.bar.Finish()
	}
	keys := ""
	if p.keys > 0 {
		keys = fmt.Sprintf(", %d keys", p.keys)
	}
	fmt.Fprintf(p.w, "%s: done: %s%s in %v\n", p.what, humanize.Bytes(uint64(p.bytes)), keys, time.Since(p.start).Round(time.Millisecond))
}

// countingReader counts the bytes read through it into a progress.
type countingReader struct {
	r    io.Reader
	p    *progress
	n    int64
	keys int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.set(c.n, c.keys)
	return n, err
}
