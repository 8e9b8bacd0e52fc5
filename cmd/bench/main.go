// Command bench is a load generator that speaks clientv3, so it runs the
// same workload against Cairn and etcd alike and their numbers can stand
// side by side.
//
//	bench [global flags] watch [flags]
//
// Global flags choose the endpoints, the gRPC connections and clients, and
// optionally a server process whose memory is sampled (-server-pid): its
// resident set at the start, its peak (VmHWM, since the process started)
// and its resident set -settle after the clients finished. Each workload
// prints a plain-text report, or one JSON object with -json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// global holds the flags every workload shares.
type global struct {
	endpoints []string
	conns     int
	clients   int
	serverPID int
	settle    time.Duration
	json      bool
	timeout   time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var g global
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "comma-separated gRPC endpoints")
	fs.IntVar(&g.conns, "conns", 1, "gRPC connections")
	fs.IntVar(&g.clients, "clients", 1, "clients (spread over the connections)")
	fs.IntVar(&g.serverPID, "server-pid", 0, "process whose memory to sample (Linux /proc); 0: none")
	fs.DurationVar(&g.settle, "settle", 8*time.Second, "with -server-pid: how long after the clients finish to sample memory again")
	fs.BoolVar(&g.json, "json", false, "print one JSON object")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [global flags] watch [flags]\n\nglobal flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	g.endpoints = strings.Split(*endpoints, ",")
	if g.conns < 1 || g.clients < 1 {
		fmt.Fprintln(stderr, "bench: -conns and -clients must be at least 1")
		return 2
	}
	var (
		rep report
		err error
	)
	switch fs.Arg(0) {
	case "watch":
		rep, err = runWatch(g, fs.Args()[1:], stderr)
	default:
		fmt.Fprintf(stderr, "bench: unknown workload %q (have: watch)\n", fs.Arg(0))
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if g.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		rep.print(stdout)
	}
	return 0
}

// report is an ordered list of named values.
type report []field

type field struct {
	Name  string
	Value any
}

func (r report) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Name)
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func (r report) print(w io.Writer) {
	width := 0
	for _, f := range r {
		width = max(width, len(f.Name))
	}
	for _, f := range r {
		fmt.Fprintf(w, "%-*s  %v\n", width, f.Name, f.Value)
	}
}

// dial opens g.conns clients, one gRPC connection each.
func dial(g global) ([]*clientv3.Client, error) {
	var cs []*clientv3.Client
	for i := 0; i < g.conns; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   g.endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		})
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cs[0].Get(ctx, "bench-ping"); err != nil {
		closeAll(cs)
		return nil, fmt.Errorf("endpoints %v do not answer: %w", g.endpoints, err)
	}
	return cs, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		_ = c.Close()
	}
}
