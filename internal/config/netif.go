package config

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// interfaceIPv4 returns the first IPv4 address of the named interface,
// looked up through netlink.
func interfaceIPv4(name string) (netip.Addr, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return netip.Addr{}, fmt.Errorf("interface %s does not exist", name)
		}
		return netip.Addr{}, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	var addrs []netlink.Addr
	for range 3 { // a dump interrupted by a concurrent change is retried
		addrs, err = netlink.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing addresses of interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no IPv4 address found on interface %s", name)
}
