package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// rawStream opens a stream to m by hand: HTTP/1.1 headers claiming to be
// from member `from`, the stream preamble, then body, and returns the
// answer's status line (or "" if the connection ended without one).
func rawStream(t *testing.T, m *httpMember, from uint64, body []byte) string {
	t.Helper()
	addr := strings.TrimPrefix(m.url(), "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n%s: %s\r\n%s: %s\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
		StreamPath, addr, HeaderClusterID, idString(testClusterID), HeaderFrom, idString(from), HeaderTo, idString(m.id))
	payload := append([]byte(streamMagic), body...)
	fmt.Fprintf(&req, "%x\r\n%s\r\n", len(payload), payload)
	if _, err := c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	// Keep the connection open a little while the server reads on, then
	// end the body.
	_, _ = io.WriteString(c, "0\r\n\r\n")
	return strings.TrimSpace(line)
}

// serverErrors captures what net/http logs (recovered panics among it).
type serverErrors struct{ bytes.Buffer }

func startGuardedMember(t *testing.T, id uint64) (*httpMember, *serverErrors) {
	m := startMember(t, id, testClusterID, 0)
	errs := &serverErrors{}
	m.srv.Config.ErrorLog = log.New(errs, "", 0)
	return m, errs
}

// TestHTTPRefusesUnknownSenders: a stream or snapshot from an ID that is
// not a member (not a peer of the transport) is refused with 403 before
// anything is read, and logged once per sender.
func TestHTTPRefusesUnknownSenders(t *testing.T) {
	b, errs := startGuardedMember(t, 2)
	b.tr.AddPeer(1, []string{"http://127.0.0.1:1"})
	frame, err := appendFrame(nil, appMsg(9, 2, 1, 8))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := rawStream(t, b, 9, frame); !strings.Contains(got, " 403 ") {
			t.Fatalf("stream from unknown member 9: %q, want 403", got)
		}
	}
	for _, path := range []string{SnapshotPath, StreamPath} {
		req, _ := http.NewRequest(http.MethodPost, b.url()+path, bytes.NewReader(frame))
		req.Header.Set(HeaderClusterID, idString(testClusterID))
		req.Header.Set(HeaderFrom, "9")
		req.Header.Set(HeaderTo, "2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get(HeaderReject) != "unknown-member" {
			t.Errorf("%s from unknown member 9: %s (%s), want 403 unknown-member", path, resp.Status, resp.Header.Get(HeaderReject))
		}
	}
	if n := b.rec.count(); n != 0 {
		t.Fatalf("%d messages from an unknown member delivered", n)
	}
	if n := b.logs.FilterMessageSnippet("refused a request from an unknown member").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("refusal logged %d times, want once", n)
	}
	// A known member is still accepted.
	if got := rawStream(t, b, 1, nil); !strings.Contains(got, " 200 ") {
		t.Fatalf("stream from member 1: %q, want 200", got)
	}
	if errs.Len() != 0 {
		t.Fatalf("net/http logged: %s", errs.String())
	}
}

// TestHTTPMalformedFramesEndTheStreamWithoutPanic: garbage after a valid
// preamble ends the stream, is logged once, and never reaches net/http's
// panic recovery.
func TestHTTPMalformedFramesEndTheStreamWithoutPanic(t *testing.T) {
	b, errs := startGuardedMember(t, 2)
	b.tr.AddPeer(1, []string{"http://127.0.0.1:1"})
	good, err := appendFrame(nil, appMsg(1, 2, 1, 8))
	if err != nil {
		t.Fatal(err)
	}
	for _, garbage := range [][]byte{
		[]byte("\x00\x00\x00\x05garbage-that-is-not-a-message"),
		[]byte("\xff\xff\xff\xffhuge"),
		append(good, "\x00\x00\x00\x03\xff\xff\xff"...),
	} {
		got := rawStream(t, b, 1, garbage)
		if !strings.Contains(got, " 200 ") && !strings.Contains(got, " 400 ") {
			t.Fatalf("malformed stream: %q", got)
		}
	}
	eventually(t, waitLimit, "the malformed streams logged", func() (bool, string) {
		n := b.logs.FilterMessageSnippet("malformed frame").Len()
		return n == 3, fmt.Sprint(n)
	})
	if n := b.logs.FilterMessageSnippet("malformed frame").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("malformed streams warned %d times, want once", n)
	}
	if n := b.rec.count(); n != 1 { // the good frame before the garbage
		t.Errorf("%d messages delivered, want 1", n)
	}
	if strings.Contains(errs.String(), "panic") || strings.Contains(errs.String(), "concurrent") {
		t.Fatalf("net/http logged: %s", errs.String())
	}
}

// removedHandler is a recorder that knows member 7 was removed.
type removedHandler struct{ *recorder }

func (removedHandler) IsRemoved(id uint64) bool { return id == 7 }

// TestHTTPRemovedSenderIsToldGone: a removed member is no peer any more,
// but it is answered 410 Gone (which stops it), not 403.
func TestHTTPRemovedSenderIsToldGone(t *testing.T) {
	tr := NewHTTP(HTTPConfig{ID: 2, ClusterID: testClusterID, Handler: removedHandler{newRecorder()}})
	defer tr.Close()
	for from, want := range map[string]int{"7": http.StatusGone, "8": http.StatusForbidden} {
		req := httptest.NewRequest(http.MethodPost, StreamPath, strings.NewReader(streamMagic))
		req.Header.Set(HeaderClusterID, idString(testClusterID))
		req.Header.Set(HeaderFrom, from)
		req.Header.Set(HeaderTo, "2")
		rec := httptest.NewRecorder()
		tr.Handler().ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("stream from %s: %d, want %d", from, rec.Code, want)
		}
	}
}

// TestHTTPUnknownSenderListedByTheClusterIsAccepted: a sender refused as
// unknown is checked in the background with VerifyMember; one the cluster
// lists (a member added while this one was behind) becomes a peer and its
// next stream is accepted, a stranger stays refused, and checks are
// rate-limited per sender.
func TestHTTPUnknownSenderListedByTheClusterIsAccepted(t *testing.T) {
	var mu sync.Mutex
	calls := map[uint64]int{}
	m := &httpMember{id: 2, rec: newRecorder()}
	core, logs := observer.New(zapcore.DebugLevel)
	m.logs = logs
	m.tr = NewHTTP(HTTPConfig{ID: 2, ClusterID: testClusterID, Handler: m.rec, Logger: zap.New(core),
		VerifyMember: func(_ context.Context, id uint64) ([]string, bool) {
			mu.Lock()
			calls[id]++
			mu.Unlock()
			if id == 5 {
				return []string{"http://127.0.0.1:1"}, true
			}
			return nil, false
		}})
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", m.tr.Handler())
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.close)

	if got := rawStream(t, m, 5, nil); !strings.Contains(got, " 403 ") {
		t.Fatalf("first stream from the not-yet-known member 5: %q, want 403", got)
	}
	eventually(t, waitLimit, "member 5 accepted once the cluster lists it", func() (bool, string) {
		got := rawStream(t, m, 5, nil)
		return strings.Contains(got, " 200 "), got
	})
	for range 10 {
		if got := rawStream(t, m, 6, nil); !strings.Contains(got, " 403 ") {
			t.Fatalf("stream from stranger 6: %q, want 403", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[6] < 1 || calls[6] > 2 {
		t.Errorf("VerifyMember asked about the stranger %d times in quick succession, want 1 or 2", calls[6])
	}
}
