package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"bagpipe/internal/config"
)

// apiListeners opens the REST API listeners: host:port unless tcp_listener
// is false, and the Unix socket when unix_socket is set. The first one
// returned is the TCP listener when there is one.
func apiListeners(c *config.APIConfig) ([]net.Listener, error) {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if c.TCP {
		ln, err := net.Listen("tcp", net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))))
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	if c.UnixSocket != "" {
		ln, err := listenUnix(c)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("unix socket %s: %w", c.UnixSocket, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// listenUnix creates the API's Unix socket with its permissions set before
// any client can connect: the socket is bound in a fresh directory of mode
// 0700 beside its final path (so that nobody else can connect to it, or
// even find it, whatever the umask), given its mode and group, then renamed
// into place. A stale socket left by an earlier run is replaced; any other
// file in the way is an error.
func listenUnix(c *config.APIConfig) (net.Listener, error) {
	path := c.UnixSocket
	gid := -1
	if c.UnixSocketGroup != "" {
		g, err := lookupGroup(c.UnixSocketGroup)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("%s exists and is not a socket", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".bagpipe-api-") // mode 0700
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the socket is renamed: unlink the final path ourselves
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, c.UnixSocketMode); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

// unixListener removes its socket file when closed.
type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
