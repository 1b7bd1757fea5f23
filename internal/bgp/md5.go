package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TCP MD5 signatures (RFC 2385): the kernel signs and checks every segment
// of a connection whose socket holds a key for the remote address. The key
// is set on the socket of an outgoing connection before connect, and on the
// listening socket for each peer (accepted connections inherit it). Errors
// never carry the password.
//
// Go listeners use Multipath TCP by default (Go 1.24+), and the kernel
// refuses TCP_MD5SIG on MPTCP sockets (ENOPROTOOPT): the speaker's sockets
// are plain TCP.

// setMD5 sets (or, with an empty key, removes) the TCP MD5 key of peer on
// the IPv4 socket fd.
func setMD5(fd uintptr, peer netip.Addr, key string) error {
	if !peer.Is4() {
		return fmt.Errorf("TCP MD5 for %v: only IPv4 peers are supported", peer)
	}
	if len(key) > unix.TCP_MD5SIG_MAXKEYLEN {
		return fmt.Errorf("TCP MD5 for %v: the password is longer than %d bytes", peer, unix.TCP_MD5SIG_MAXKEYLEN)
	}
	sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
	copy(sig.Key[:], key)
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sig.Addr))
	sa.Family = unix.AF_INET
	sa.Addr = peer.As4()
	if err := unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig); err != nil {
		return fmt.Errorf("TCP MD5 signature for peer %v: %w", peer, err)
	}
	return nil
}

// md5Control returns a net.Dialer Control function setting the MD5 key of
// peer on the socket before it connects.
func md5Control(peer netip.Addr, key string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = setMD5(fd, peer, key) }); cerr != nil {
			return cerr
		}
		return err
	}
}

// setListenerMD5 sets (or removes, with an empty key) the MD5 key of peer
// on a listening socket.
func setListenerMD5(ln net.Listener, peer netip.Addr, key string) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return fmt.Errorf("TCP MD5: not a TCP listener")
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) { err = setMD5(fd, peer, key) }); cerr != nil {
		return cerr
	}
	return err
}
