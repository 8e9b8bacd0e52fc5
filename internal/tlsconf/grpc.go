package tlsconf

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// GRPCCredentials are gRPC transport credentials that dial with a fresh
// ClientConfig for every connection, so renewed files are used.
func (s *Side) GRPCCredentials() credentials.TransportCredentials { return &grpcCreds{s: s} }

// SelfGRPCCredentials are GRPCCredentials that trust any server
// certificate: for the JSON gateway dialing its own member's listener, as
// etcd's gateway does (the listener may be on 0.0.0.0, which no
// certificate names). The member's client certificate is presented.
func (s *Side) SelfGRPCCredentials() credentials.TransportCredentials {
	return &grpcCreds{s: s, self: true}
}

type grpcCreds struct {
	s          *Side
	serverName string
	self       bool
}

func (g *grpcCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	host := g.serverName
	if host == "" {
		host = authority
		if h, _, err := net.SplitHostPort(authority); err == nil {
			host = h
		}
	}
	cfg, err := g.s.ClientConfig(host)
	if err != nil {
		return nil, nil, err
	}
	cfg.InsecureSkipVerify = cfg.InsecureSkipVerify || g.self
	return credentials.NewTLS(cfg).ClientHandshake(ctx, authority, conn)
}

func (g *grpcCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconf: client credentials only")
}

func (g *grpcCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2", ServerName: g.serverName}
}

func (g *grpcCreds) Clone() credentials.TransportCredentials { c := *g; return &c }

func (g *grpcCreds) OverrideServerName(name string) error { g.serverName = name; return nil }
