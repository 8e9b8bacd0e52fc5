package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// ListenOptions say what one client listener serves.
type ListenOptions struct {
	// GRPC and HTTP select the sides served: both on etcd's
	// --listen-client-urls, one of them with --listen-client-http-urls.
	GRPC, HTTP bool
	// GatewayAddr is the gRPC listener the JSON gateway dials (default:
	// the listener itself).
	GatewayAddr net.Addr
	// GatewayCreds are the credentials the gateway dials GatewayAddr with
	// (TLS when that listener is TLS); nil is plaintext.
	GatewayCreds credentials.TransportCredentials
	// TLS, when set, means the listener yields TLS connections whose
	// handshake is done (tlsconf.Side.Listener), made with this
	// configuration. gRPC and HTTP then share one HTTP server, which
	// hands HTTP/2 requests of content type application/grpc to the gRPC
	// server, as etcd does; clients' certificates reach the services as
	// credentials.TLSInfo in the peer's AuthInfo either way.
	TLS *tls.Config
}

// grpcHandlerFunc sends gRPC requests (HTTP/2, application/grpc) to gs and
// everything else to other: etcd's way of serving both over one TLS port,
// where the protocols cannot be told apart before the handshake.
func grpcHandlerFunc(gs *grpc.Server, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// handshakenCreds are the gRPC server's transport credentials: a
// connection that is already TLS (a TLS listener did the handshake) is
// described as TLS with its peer's certificates, as gRPC's own TLS
// credentials would; a plain one passes as it is.
type handshakenCreds struct{}

func (handshakenCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, nil, nil
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshakenCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("api: server credentials only")
}

func (handshakenCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (handshakenCreds) Clone() credentials.TransportCredentials { return handshakenCreds{} }

func (handshakenCreds) OverrideServerName(string) error { return nil }

// gatewayBodyLimit is the largest JSON request body the gateway reads:
// the gRPC limit (--max-request-bytes plus the gRPC framing allowance)
// with room for JSON's base64 values (4/3 of the bytes) and field names.
func (s *Server) gatewayBodyLimit() int64 {
	return 2*int64(s.cfg.MaxRequestBytes) + grpcOverheadBytes
}

// capBody stops reading a gateway request's body past limit, so a client
// cannot make the server hold more than limit bytes of one request (the
// gateway reads a whole body before the gRPC size check, as etcd's does).
// An oversized body is answered as gRPC answers an oversized message
// through the gateway: 429 with ResourceExhausted, "grpc: received
// message larger than max". Watch's request body is a long-lived stream
// of JSON messages: each message, not the stream, is held to limit
// (watchBodyCap).
func capBody(gwmux *runtime.ServeMux, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			gwmux.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/v3/watch" {
			r.Body = &watchBodyCap{rc: r.Body, limit: limit}
			gwmux.ServeHTTP(w, r)
			return
		}
		tooLarge := func(n int64) {
			_, out := runtime.MarshalerForRequest(gwmux, r)
			// The rest of the body is not read: close the connection.
			w.Header().Set("Connection", "close")
			runtime.HTTPError(r.Context(), gwmux, out, w, r,
				status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, limit))
		}
		if r.ContentLength > limit {
			tooLarge(r.ContentLength)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			runtime.HTTPError(r.Context(), gwmux, &runtime.JSONPb{}, w, r, status.Errorf(codes.InvalidArgument, "reading the request body: %v", err))
			return
		}
		if int64(len(body)) > limit {
			tooLarge(int64(len(body)))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		gwmux.ServeHTTP(w, r)
	})
}

// errWatchMessageTooLarge ends a gateway watch stream whose next message
// grows past the cap.
var errWatchMessageTooLarge = errors.New("api: watch request message larger than max")

// watchBodyCap holds each top-level JSON value of a stream to limit bytes:
// it follows strings, escapes and nesting just enough to see where a
// value ends, and fails the read once one grows past limit, so the
// gateway's decoder never buffers more than that.
type watchBodyCap struct {
	rc    io.ReadCloser
	limit int64
	n     int64 // bytes of the current value
	depth int
	inStr bool
	esc   bool
	err   error
}

func (b *watchBodyCap) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	for i, c := range p[:n] {
		b.n++
		if b.n > b.limit {
			b.err = errWatchMessageTooLarge
			return i, b.err
		}
		switch {
		case b.inStr:
			switch {
			case b.esc:
				b.esc = false
			case c == '\\':
				b.esc = true
			case c == '"':
				b.inStr = false
			}
		case c == '"':
			b.inStr = true
		case c == '{' || c == '[':
			b.depth++
		case c == '}' || c == ']':
			if b.depth--; b.depth <= 0 {
				b.depth, b.n = 0, 0 // a top-level value ended
			}
		}
	}
	return n, err
}

func (b *watchBodyCap) Close() error { return b.rc.Close() }
