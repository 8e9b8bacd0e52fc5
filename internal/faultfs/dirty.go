package faultfs

import (
	"syscall"
)

// dirtyFile is the unsynced state of one file: the pages written since its
// last fsync and its current size, over the backing file that holds the
// synced contents.
type dirtyFile struct {
	size   int64 // current size
	synced int64 // size of the backing file (the synced size)
	// low is the lowest size the file had since its last fsync: backing
	// bytes at or past it are gone (a truncate cut them) unless a page
	// here covers them.
	low   int64
	pages map[int64][]byte // page number → pageSize bytes
}

func newDirty(fd int) (*dirtyFile, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &dirtyFile{size: st.Size, synced: st.Size, low: st.Size, pages: map[int64][]byte{}}, nil
}

// backingPage reads page pg as the backing file holds it, as far as it is
// still valid (below low), zeros elsewhere.
func (d *dirtyFile) backingPage(fd int, pg int64) ([]byte, error) {
	buf := make([]byte, pageSize)
	start := pg * pageSize
	valid := min(d.low, d.synced) - start
	if valid <= 0 {
		return buf, nil
	}
	valid = min(valid, pageSize)
	n := 0
	for int64(n) < valid {
		m, err := syscall.Pread(fd, buf[n:valid], start+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf, nil
}

// page returns page pg for reading (not stored).
func (d *dirtyFile) page(fd int, pg int64) ([]byte, error) {
	if p, ok := d.pages[pg]; ok {
		return p, nil
	}
	return d.backingPage(fd, pg)
}

// read fills dest from offset off; it returns the bytes read (short at the
// end of the file).
func (d *dirtyFile) read(fd int, dest []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, nil
	}
	n := int(min(int64(len(dest)), d.size-off))
	done := 0
	for done < n {
		pos := off + int64(done)
		pg := pos / pageSize
		p, err := d.page(fd, pg)
		if err != nil {
			return done, err
		}
		done += copy(dest[done:n], p[pos-pg*pageSize:])
	}
	return n, nil
}

// write stores data at off.
func (d *dirtyFile) write(fd int, data []byte, off int64) error {
	done := 0
	for done < len(data) {
		pos := off + int64(done)
		pg := pos / pageSize
		p, ok := d.pages[pg]
		if !ok {
			var err error
			if p, err = d.backingPage(fd, pg); err != nil {
				return err
			}
			// Bytes past the current size read as zeros once the
			// file grows over them.
			if end := d.size - pg*pageSize; end < pageSize {
				clear(p[max(end, 0):])
			}
			d.pages[pg] = p
		}
		done += copy(p[pos-pg*pageSize:], data[done:])
	}
	d.size = max(d.size, off+int64(len(data)))
	return nil
}

// truncate sets the size.
func (d *dirtyFile) truncate(fd int, size int64) error {
	if size < d.size {
		last := size / pageSize
		for pg := range d.pages {
			if pg > last || (pg == last && size%pageSize == 0) {
				delete(d.pages, pg)
			}
		}
		if size%pageSize != 0 {
			p, ok := d.pages[last]
			if !ok {
				var err error
				if p, err = d.backingPage(fd, last); err != nil {
					return err
				}
				d.pages[last] = p
			}
			clear(p[size%pageSize:])
		}
		d.low = min(d.low, size)
	}
	d.size = size
	return nil
}

// sync writes the pages and the size to the backing file.
func (d *dirtyFile) sync(fd int) error {
	if d.low < d.synced {
		if err := syscall.Ftruncate(fd, d.low); err != nil {
			return err
		}
	}
	for pg, p := range d.pages {
		start := pg * pageSize
		n := min(int64(pageSize), d.size-start)
		if n <= 0 {
			continue
		}
		b := p[:n]
		for len(b) > 0 {
			m, err := syscall.Pwrite(fd, b, start)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			b, start = b[m:], start+int64(m)
		}
	}
	if err := syscall.Ftruncate(fd, d.size); err != nil {
		return err
	}
	d.synced, d.low = d.size, d.size
	clear(d.pages)
	return nil
}
