package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
)

// defaultHealthURL is the /health of a member serving on this host's
// default client URL.
const defaultHealthURL = "http://127.0.0.1:2379/health"

// newCheckHealthCommand is `cairnctl check health [URL]`: one GET of a
// member's /health, exit status 0 if it answers 200 with health "true".
// It is the container image's HEALTHCHECK, which has no shell nor curl.
func newCheckHealthCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health [URL]",
		Short: "Checks a member's /health over HTTP (default " + defaultHealthURL + "): exit status 0 if healthy",
		Args:  cobra.MaximumNArgs(1),
		Run: func(cmd *cobra.Command, args []string) {
			url := defaultHealthURL
			if len(args) == 1 {
				url = args[0]
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			msg, err := checkHealth(ctx, http.DefaultClient, url)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s is unhealthy: %v\n", url, err)
				os.Exit(cobrautl.ExitError)
			}
			fmt.Printf("%s is healthy: %s\n", url, msg)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// checkHealth GETs url and returns its body if the member answered 200
// with {"health":"true"}, else an error saying what it answered.
func checkHealth(ctx context.Context, cl *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return "", fmt.Errorf("status %d, not etcd's health JSON: %q", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK || h.Health != "true" {
		return "", fmt.Errorf("status %d, health %q, reason %q", resp.StatusCode, h.Health, h.Reason)
	}
	return string(body), nil
}
