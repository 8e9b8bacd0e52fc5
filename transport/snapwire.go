package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A snapshot travels as one protobuf-encoded raftpb.Message, as it always
// has, but written so that the database streams: every field of the message
// but its snapshot first, then the snapshot field with its metadata before
// its data, which ends the message. Protobuf decoders take fields in any
// order, so a receiver that unmarshals the whole body reads it as before,
// and a streaming receiver has the whole message in hand when the data
// begins. Both sides stay in bounded memory whatever the database's size.

// Field numbers of the fields the stream is cut around.
var (
	fieldMessageSnapshot  = fieldNumber(&raftpb.Message{}, "snapshot")
	fieldSnapshotData     = fieldNumber(&raftpb.Snapshot{}, "data")
	fieldSnapshotMetadata = fieldNumber(&raftpb.Snapshot{}, "metadata")
)

func fieldNumber(m proto.Message, name string) protowire.Number {
	f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	if f == nil {
		panic("transport: raftpb has no field " + name)
	}
	return f.Number()
}

// snapshotHead encodes m (a MsgSnap) up to the data of its snapshot, whose
// size bytes are to follow it.
func snapshotHead(m *raftpb.Message, size int64) ([]byte, error) {
	rest := proto.Clone(m).(*raftpb.Message)
	rest.Snapshot = nil
	head, err := proto.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("transport: encoding snapshot message: %w", err)
	}
	meta, err := proto.Marshal(m.GetSnapshot().GetMetadata())
	if err != nil {
		return nil, fmt.Errorf("transport: encoding snapshot metadata: %w", err)
	}
	var sub []byte
	sub = protowire.AppendTag(sub, fieldSnapshotMetadata, protowire.BytesType)
	sub = protowire.AppendBytes(sub, meta)
	sub = protowire.AppendTag(sub, fieldSnapshotData, protowire.BytesType)
	sub = protowire.AppendVarint(sub, uint64(size))
	head = protowire.AppendTag(head, fieldMessageSnapshot, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(int64(len(sub))+size))
	return append(head, sub...), nil
}

// errMalformed marks a snapshot body that is not a well-formed message.
var errMalformed = errors.New("malformed snapshot message")

// maxSnapshotFieldBytes bounds every field of a snapshot message but the
// data: they are small (metadata, an empty entry list, a context).
const maxSnapshotFieldBytes = 16 << 20

// decodeSnapshot reads one snapshot message from r and calls deliver once
// with the message (its snapshot's data left empty) and a reader of the data.
// When the metadata comes before the data (snapshotHead's order), the data
// streams from r; otherwise (an older sender) it is read into memory first,
// up to limit bytes. Errors in the encoding wrap errMalformed; deliver's error
// is returned as it is.
func decodeSnapshot(r *bufio.Reader, limit int64, deliver func(m *raftpb.Message, data io.Reader, size int64) error) error {
	var (
		rest      []byte // fields of the message other than the snapshot
		meta      *raftpb.SnapshotMetadata
		data      []byte // data read ahead of the metadata
		delivered bool
	)
	message := func() (*raftpb.Message, error) {
		m := new(raftpb.Message)
		if err := proto.Unmarshal(rest, m); err != nil {
			return nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
		m.Snapshot = &raftpb.Snapshot{Metadata: meta}
		return m, nil
	}
	for {
		num, typ, err := readTag(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if delivered {
			return fmt.Errorf("%w: field %d after the snapshot's data", errMalformed, num)
		}
		if num != fieldMessageSnapshot || typ != protowire.BytesType {
			if rest, err = copyField(r, rest, num, typ); err != nil {
				return err
			}
			continue
		}
		subLen, err := readVarint(r)
		if err != nil {
			return err
		}
		if subLen > uint64(limit)+maxSnapshotFieldBytes {
			return fmt.Errorf("%w: snapshot of %d bytes exceeds the limit of %d", errTooLarge, subLen, limit)
		}
		sub := &countReader{r: r}
		for sub.n < int64(subLen) {
			num, typ, err := readTag(sub)
			if err == io.EOF {
				return fmt.Errorf("%w: %v", errMalformed, io.ErrUnexpectedEOF)
			}
			if err != nil {
				return err
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("%w: snapshot field %d of wire type %d", errMalformed, num, typ)
			}
			size, err := readVarint(sub)
			if err != nil {
				return err
			}
			if int64(size) > int64(subLen)-sub.n {
				return fmt.Errorf("%w: snapshot field %d of %d bytes overruns its message", errMalformed, num, size)
			}
			switch num {
			case fieldSnapshotMetadata:
				b, err := readN(sub, size, maxSnapshotFieldBytes)
				if err != nil {
					return err
				}
				meta = new(raftpb.SnapshotMetadata)
				if err := proto.Unmarshal(b, meta); err != nil {
					return fmt.Errorf("%w: snapshot metadata: %v", errMalformed, err)
				}
			case fieldSnapshotData:
				if meta == nil || sub.n+int64(size) != int64(subLen) {
					// Not in snapshotHead's order: hold the data until the
					// rest of the message is known.
					if data, err = readN(sub, size, limit); err != nil {
						return err
					}
					continue
				}
				m, err := message()
				if err != nil {
					return err
				}
				lr := &exactReader{r: r, n: int64(size)}
				if err := deliver(m, lr, int64(size)); err != nil {
					return err
				}
				if lr.n != 0 {
					return fmt.Errorf("transport: snapshot data: %d bytes left unread", lr.n)
				}
				sub.n += int64(size)
				delivered = true
			default:
				if _, err := readN(sub, size, maxSnapshotFieldBytes); err != nil {
					return err
				}
			}
		}
	}
	if delivered {
		return nil
	}
	if meta == nil {
		return fmt.Errorf("%w: no snapshot metadata", errMalformed)
	}
	m, err := message()
	if err != nil {
		return err
	}
	return deliver(m, bytes.NewReader(data), int64(len(data)))
}

// exactReader reads the next n bytes of r, and fails with
// io.ErrUnexpectedEOF if r ends before them: a cut body never passes for a
// whole database.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.n {
		b = b[:e.n]
	}
	k, err := e.r.Read(b)
	e.n -= int64(k)
	if err == io.EOF {
		if e.n > 0 {
			return k, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return k, err
}

// errTooLarge marks a snapshot over the limit.
var errTooLarge = errors.New("snapshot too large")

type byteReader interface {
	io.Reader
	io.ByteReader
}

// countReader counts the bytes read through it.
type countReader struct {
	r *bufio.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// readTag reads a field's tag; io.EOF only when r ends cleanly before it.
func readTag(r byteReader) (protowire.Number, protowire.Type, error) {
	v, err := readVarintEOF(r)
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, fmt.Errorf("%w: invalid field number", errMalformed)
	}
	return num, typ, nil
}

func readVarint(r byteReader) (uint64, error) {
	v, err := readVarintEOF(r)
	if err == io.EOF {
		return 0, fmt.Errorf("%w: %v", errMalformed, io.ErrUnexpectedEOF)
	}
	return v, err
}

func readVarintEOF(r byteReader) (uint64, error) {
	var v uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				return 0, fmt.Errorf("%w: %v", errMalformed, io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		if i == 9 && b > 1 {
			return 0, fmt.Errorf("%w: varint overflows", errMalformed)
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
}

// readN reads exactly n bytes, refusing more than max.
func readN(r io.Reader, n uint64, max int64) ([]byte, error) {
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: a field of %d bytes exceeds the limit of %d", errTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: %v", errMalformed, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	return b, nil
}

// copyField reads the value of a field of type typ and appends the whole
// field, tag included, to dst.
func copyField(r *bufio.Reader, dst []byte, num protowire.Number, typ protowire.Type) ([]byte, error) {
	dst = protowire.AppendTag(dst, num, typ)
	switch typ {
	case protowire.VarintType:
		v, err := readVarint(r)
		if err != nil {
			return nil, err
		}
		return protowire.AppendVarint(dst, v), nil
	case protowire.Fixed32Type:
		b, err := readN(r, 4, 4)
		return append(dst, b...), err
	case protowire.Fixed64Type:
		b, err := readN(r, 8, 8)
		return append(dst, b...), err
	case protowire.BytesType:
		n, err := readVarint(r)
		if err != nil {
			return nil, err
		}
		b, err := readN(r, n, maxSnapshotFieldBytes)
		if err != nil {
			return nil, err
		}
		return protowire.AppendBytes(dst, b), nil
	default:
		return nil, fmt.Errorf("%w: field %d of wire type %d", errMalformed, num, typ)
	}
}
