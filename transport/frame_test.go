package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf []byte
	var err error
	for i := uint64(0); i < 100; i++ {
		if buf, err = appendFrame(buf, appMsg(1, 2, i, int(i*50))); err != nil {
			t.Fatal(err)
		}
	}
	d := newFrameReader(bytes.NewReader(buf))
	var got []*raftpb.Message
	for {
		m, err := d.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(got), err)
		}
		got = append(got, m)
	}
	if len(got) != 100 {
		t.Fatalf("decoded %d frames, want 100", len(got))
	}
	for i, m := range got {
		checkInOrder(t, []*raftpb.Message{m}, 1, 2, uint64(i), i*50)
	}
}

func TestFrameTruncatedIsUnexpectedEOF(t *testing.T) {
	buf, err := appendFrame(nil, appMsg(1, 2, 9, 100))
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{2, frameHeaderBytes, len(buf) - 1} {
		_, err := newFrameReader(bytes.NewReader(buf[:cut])).next()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d of %d: err %v, want io.ErrUnexpectedEOF", cut, len(buf), err)
		}
	}
}

func TestFrameOversizedLengthIsRejected(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, maxFrameBytes+1)
	_, err := newFrameReader(bytes.NewReader(hdr)).next()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err %v, want ErrFrameTooLarge", err)
	}
}

func TestFrameGarbageIsAnError(t *testing.T) {
	buf := binary.BigEndian.AppendUint32(nil, 3)
	buf = append(buf, 0xff, 0xff, 0xff)
	if _, err := newFrameReader(bytes.NewReader(buf)).next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("err %v, want an unmarshal error", err)
	}
}
