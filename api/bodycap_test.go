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
