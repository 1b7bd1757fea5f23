package testfabric

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// StartTCPEcho listens on address (e.g. "10.1.2.1:8080") inside the
// node's namespace and answers each connection's first message with
// "<node name>:<message>", then closes it. The listener is closed at test
// cleanup.
func (n *Node) StartTCPEcho(t testing.TB, address string) {
	t.Helper()
	ln, err := n.Listen("tcp4", address)
	if err != nil {
		t.Fatalf("%s: listening on %s: %v", n, address, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 512)
				k, err := c.Read(buf)
				if err != nil {
					return
				}
				_, _ = c.Write([]byte(n.name + ":" + string(buf[:k])))
			}()
		}
	}()
}

// TCPExchange connects from the node's namespace to address, sends msg and
// returns the answer (read until the server closes), within timeout.
func (n *Node) TCPExchange(ctx context.Context, address, msg string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := n.DialContext(ctx, "tcp4", address)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return string(b), fmt.Errorf("%s: reading the answer of %s: %w", n, address, err)
	}
	return string(b), nil
}
