package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// countingBody is a huge chunked put request (a JSON value that goes on
// and on, as a JSON decoder would read to its end) that counts what the
// server pulled from it.
type countingBody struct {
	n     atomic.Int64
	limit int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.n.Load() >= b.limit {
		return 0, io.EOF
	}
	i := 0
	if b.n.Load() == 0 {
		i = copy(p, `{"key":"Zm9v","value":"`)
	}
	for ; i < len(p); i++ {
		p[i] = 'A'
	}
	b.n.Add(int64(len(p)))
	return len(p), nil
}

// TestGatewayCapsRequestBodies: an oversized gateway request is refused
// with gRPC's ResourceExhausted (429) after at most the cap is read,
// whether it announces its length or streams it chunked; a request under
// the cap still works.
func TestGatewayCapsRequestBodies(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.MaxRequestBytes = 64 << 10 })
	limit := ts.s.gatewayBodyLimit()

	// Chunked, 64 MiB offered.
	body := &countingBody{limit: 64 << 20}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+ts.addr+"/v3/kv/put", io.NopCloser(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("chunked oversized put: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "grpc: received message larger than max") || !strings.Contains(string(b), `"code":8`) {
		t.Fatalf("chunked oversized put: %d %s", resp.StatusCode, b)
	}
	// The client may have buffered some more in the socket, but the
	// server stopped far short of what was offered.
	if got := body.n.Load(); got > limit+8<<20 {
		t.Fatalf("the client wrote %d bytes before the refusal; the cap is %d", got, limit)
	}

	// Announced length over the cap: refused before reading.
	big := `{"key":"Zm9v","value":"` + strings.Repeat("A", int(limit)) + `"}`
	code, out, _ := httpDo(t, http.MethodPost, "http://"+ts.addr+"/v3/kv/put", big)
	if code != http.StatusTooManyRequests || !strings.Contains(out, fmt.Sprintf("vs. %d", limit)) {
		t.Fatalf("oversized put with Content-Length: %d %s", code, out)
	}
	// Under the cap: served.
	code, out, _ = httpDo(t, http.MethodPost, "http://"+ts.addr+"/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`)
	if code != http.StatusOK {
		t.Fatalf("small put: %d %s", code, out)
	}
}

// endlessWatch is a gateway watch request stream: one small create
// request, then one that never ends, counting what the server pulled.
type endlessWatch struct {
	n    atomic.Int64
	head []byte
}

func (b *endlessWatch) Read(p []byte) (int, error) {
	if b.n.Load() > 256<<20 {
		return 0, io.EOF
	}
	i := 0
	if len(b.head) > 0 {
		i = copy(p, b.head)
		b.head = b.head[i:]
	}
	for ; i < len(p); i++ {
		p[i] = 'A'
	}
	b.n.Add(int64(len(p)))
	return len(p), nil
}

// TestGatewayCapsEachWatchMessage: the watch stream's body is long-lived,
// so each of its messages is capped, not the stream: a small create
// request is served, then a message that grows past the cap ends the
// stream before the server has read much more than the cap.
func TestGatewayCapsEachWatchMessage(t *testing.T) {
	ts := startServer(t, newMemBackend(t), func(c *Config) { c.Watch = watchStub{}; c.MaxRequestBytes = 64 << 10 })
	limit := ts.s.gatewayBodyLimit()
	body := &endlessWatch{head: []byte(`{"create_request":{"key":"Zm9v"}} {"create_request":{"key":"`)}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+ts.addr+"/v3/watch", io.NopCloser(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body) // ends when the server ends the stream
	resp.Body.Close()
	if !strings.Contains(string(out), `"created":true`) {
		t.Fatalf("the first watch was not created: %s", out)
	}
	if got := body.n.Load(); got > limit+8<<20 {
		t.Fatalf("the client wrote %d bytes before the stream ended; the cap is %d per message", got, limit)
	}
}

// TestWatchBodyCapFollowsJSON: strings holding braces and escaped quotes
// do not end a message early, and many small messages pass a cap smaller
// than their sum.
func TestWatchBodyCapFollowsJSON(t *testing.T) {
	msg := `{"a":"}}\"{{","b":[{"c":1}]}` + "\n"
	var stream strings.Builder
	for range 100 {
		stream.WriteString(msg)
	}
	b := &watchBodyCap{rc: io.NopCloser(strings.NewReader(stream.String())), limit: int64(len(msg)) + 1}
	if got, err := io.ReadAll(b); err != nil || len(got) != stream.Len() {
		t.Fatalf("read %d of %d bytes: %v", len(got), stream.Len(), err)
	}
	b = &watchBodyCap{rc: io.NopCloser(strings.NewReader(`{"a":"` + strings.Repeat(`\"}`, 100) + `"}`)), limit: 100}
	if _, err := io.ReadAll(b); err != errWatchMessageTooLarge {
		t.Fatalf("a 300-byte message under a 100-byte cap: %v", err)
	}
}
