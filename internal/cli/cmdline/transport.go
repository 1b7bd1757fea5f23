package cmdline

import (
	"context"
	"net"
	"net/http"
)

// UnixSocketUsage is the help text of the tools' --unix-socket option.
const UnixSocketUsage = "reach bagpipe-bgp through the Unix socket at `PATH` ([API] unix_socket) " +
	"instead of TCP (--server and --port are then ignored)"

// Transport returns the HTTP transport of the tools: never through a proxy,
// no compression asked (like the reference's urllib), and over the Unix
// socket at socket when it is not empty.
func Transport(socket string) *http.Transport {
	t := &http.Transport{DisableCompression: true}
	if socket != "" {
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	return t
}
