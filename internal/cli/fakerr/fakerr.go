// Package fakerr implements bagpipe-fakerr, a crude fake BGP route reflector
// for manual tests: a TCP server that splices exactly two clients together.
// Data sent by the first client is buffered until the second one connects,
// then everything is relayed both ways. When one client goes away the other
// one is disconnected too, and the next two clients form a new pair. While a
// pair is connected, further clients are refused.
//
// It is not a BGP speaker: two bagpipe-bgp instances configured with the
// relay's address as their only peer end up peering with each other.
package fakerr

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"bagpipe/internal/cli/cmdline"
)

// Relay splices two TCP clients together. The zero value is ready to use and
// logs nothing.
type Relay struct {
	// Log receives one line per event (new peer, buffering, lost peer...),
	// in the wording of the reference implementation.
	Log io.Writer

	mu      sync.Mutex
	first   net.Conn
	second  net.Conn
	pending [][]byte // data received from first while second is missing
}

// Serve accepts clients on ln until ln is closed and returns the error that
// stopped Accept.
func (r *Relay) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		r.admit(c)
	}
}

// admit registers a new client as first or second peer, or refuses it.
func (r *Relay) admit(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	host := peerHost(c)
	if r.second != nil {
		r.logf("Have already 2 peers, not accepting %s", host)
		c.Close()
		return
	}
	r.logf("Got new peer: %s", host)
	if r.first == nil {
		r.first, r.pending = c, nil
		r.logf("%s is first peer, will buffer data until second peer arrives...", host)
	} else {
		// Flushing while holding the lock guarantees that the buffered data
		// reaches the second peer before anything relayed afterwards.
		r.logf("%s is second peer, sending buffered data...", host)
		for _, data := range r.pending {
			r.logf("   sending buffered data to peer %s (%d bytes)", host, len(data))
			c.Write(data) // a failure shows up as a read error on c
		}
		r.second, r.pending = c, nil
		r.logf("now ready")
	}
	go r.relay(c)
}

// relay copies what c sends to the other peer, buffering it while there is
// none, until c fails; then it drops c and its peer.
func (r *Relay) relay(c net.Conn) {
	defer r.lost(c)
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			r.mu.Lock()
			peer := r.peerOf(c)
			if peer == nil && r.first == c {
				r.logf("buffering received data (%d bytes)", n)
				r.pending = append(r.pending, append([]byte(nil), buf[:n]...))
			}
			r.mu.Unlock()
			if peer != nil {
				if _, werr := peer.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// peerOf returns the other member of c's pair, or nil. r.mu must be held.
func (r *Relay) peerOf(c net.Conn) net.Conn {
	switch c {
	case r.first:
		return r.second
	case r.second:
		return r.first
	}
	return nil
}

// lost closes c and, if c is still one of the current pair, its peer too,
// making room for two new clients.
func (r *Relay) lost(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logf("Lost peer %s", peerHost(c))
	c.Close()
	if c == r.first || c == r.second {
		if peer := r.peerOf(c); peer != nil {
			peer.Close()
		}
		r.first, r.second, r.pending = nil, nil, nil
	}
}

func (r *Relay) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

func peerHost(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// Run is the bagpipe-fakerr command: it parses args (without the program
// name), listens and relays until the listener fails. It returns the process
// exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	cmd := cmdline.New("bagpipe-fakerr", "bagpipe-fakerr [--listen <address>] [--port <port>]", stdout, stderr)
	listen := cmd.String("listen", "", "`ADDRESS` to listen on (optional, default: all addresses)")
	port := cmd.Int("port", 179, "TCP `PORT` to listen on (optional, default: 179)")
	positional, err := cmd.Parse(args)
	if err == nil && len(positional) > 0 {
		err = cmd.Fail("unexpected argument: " + positional[0])
	}
	if err != nil {
		return cmdline.ExitStatus(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*listen, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "bagpipe-fakerr: %v\n", err)
		return 1
	}
	relay := &Relay{Log: stdout}
	err = relay.Serve(ln)
	fmt.Fprintf(stderr, "bagpipe-fakerr: %v\n", err)
	return 1
}
