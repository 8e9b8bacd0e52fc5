package server

import (
	"net/url"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ClientCredentials are gRPC transport credentials (Config.ClientCreds).
type ClientCredentials = credentials.TransportCredentials

// IsRemoved reports whether the cluster removed member id
// (transport.RemovedChecker): the peer listener answers such a member 410
// Gone, which stops it, and any other non-member 403.
func (s *Server) IsRemoved(id uint64) bool {
	r := s.removed.Load()
	return r != nil && (*r)[id]
}

// clientCreds are the credentials to dial a member's client URL u with:
// Config.ClientCreds for https and unixs, plaintext otherwise. An https
// URL without them is dialed with TLS that verifies against the system's
// roots, never in plaintext.
func (s *Server) clientCreds(u string) credentials.TransportCredentials {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "unixs") {
		return insecure.NewCredentials()
	}
	if s.cfg.ClientCreds != nil {
		return s.cfg.ClientCreds
	}
	return credentials.NewClientTLSFromCert(nil, "")
}
