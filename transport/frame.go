package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// maxFrameBytes bounds one marshalled message on a stream. Raft messages on
// streams are bounded by raft's MaxSizePerMsg plus one entry, itself bounded
// by the request size limit; snapshots do not travel on streams.
const maxFrameBytes = 128 << 20

// frameHeaderBytes is the size of a frame's length prefix.
const frameHeaderBytes = 4

// ErrFrameTooLarge is returned when a frame exceeds the size limit.
var ErrFrameTooLarge = errors.New("transport: frame too large")

// ErrMalformedFrame is returned when a frame does not hold a raft message.
var ErrMalformedFrame = errors.New("transport: malformed frame")

// appendFrame appends m to buf as one frame: its marshalled length as a
// 4-byte big-endian integer, then the marshalled message. On error buf is
// returned unchanged.
func appendFrame(buf []byte, m *raftpb.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderBytes)...)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], fmt.Errorf("transport: marshal %v to %x: %w", m.GetType(), m.GetTo(), err)
	}
	n := len(buf) - start - frameHeaderBytes
	if n > maxFrameBytes {
		return buf[:start], fmt.Errorf("%w: %v to %x is %d bytes, limit %d", ErrFrameTooLarge, m.GetType(), m.GetTo(), n, maxFrameBytes)
	}
	binary.BigEndian.PutUint32(buf[start:], uint32(n))
	return buf, nil
}

// frameReader decodes the frames written by appendFrame.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next message. It returns io.EOF when the stream ends
// cleanly between frames, and io.ErrUnexpectedEOF when it ends inside one.
func (d *frameReader) next() (*raftpb.Message, error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(d.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxFrameBytes)
	}
	if cap(d.buf) > 4<<20 && int(n) < 64<<10 {
		d.buf = nil // do not keep a huge buffer for small frames
	}
	if int(n) <= cap(d.buf) {
		d.buf = d.buf[:n]
		if _, err := io.ReadFull(d.r, d.buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	} else {
		// Grow with what actually arrives: a header claiming a huge frame
		// costs memory only as its bytes come in.
		var b bytes.Buffer
		b.Grow(min(int(n), 1<<20))
		if m, err := io.CopyN(&b, d.r, int64(n)); err != nil {
			if errors.Is(err, io.EOF) && m < int64(n) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		d.buf = b.Bytes()
	}
	m := new(raftpb.Message)
	// proto.Unmarshal copies bytes fields, so d.buf can be reused.
	if err := proto.Unmarshal(d.buf, m); err != nil {
		return nil, fmt.Errorf("%w: unmarshal frame of %d bytes: %w", ErrMalformedFrame, n, err)
	}
	return m, nil
}
