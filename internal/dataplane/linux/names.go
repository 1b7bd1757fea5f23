package linux

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Name prefixes of the links of an instance (those of the reference).
const (
	BridgePrefix = "evpn---"
	VXLANPrefix  = "vxlan--"
	// AliasPrefix starts the alias (IFLA_IFALIAS) of every link we create;
	// the external instance id follows.
	AliasPrefix = "bagpipe-bgp:evpn:"
	// maxIfName is the longest Linux interface name (IFNAMSIZ - 1).
	maxIfName = 15
	// maxAlias bounds the alias we write (the kernel accepts 255 bytes).
	maxAlias = 200
)

// truncate cuts s to the longest interface name.
func truncate(s string) string {
	if len(s) > maxIfName {
		return s[:maxIfName]
	}
	return s
}

// candidateNames returns the n-th (from 0) pair of names an instance of
// the given external id may use: n = 0 is the reference naming (prefix +
// id, truncated); n >= 1 replaces the id by 8 hex digits of the FNV-1a
// hash of the id (n = 1) or of "<id>#<n>" (n >= 2).
func candidateNames(externalID string, n int) (bridge, vxlan string) {
	if n == 0 {
		return truncate(BridgePrefix + externalID), truncate(VXLANPrefix + externalID)
	}
	h := fnv.New32a()
	h.Write([]byte(externalID))
	if n >= 2 {
		fmt.Fprintf(h, "#%d", n)
	}
	suffix := fmt.Sprintf("%08x", h.Sum32())
	return BridgePrefix + suffix, VXLANPrefix + suffix
}

// chooseNames returns the first pair of candidate names none of which is
// taken. taken reports whether a name is in use; bridgeFixed, when not
// empty, is the linuxbr bridge given by the client (only the VXLAN name
// is then chosen).
func chooseNames(externalID, bridgeFixed string, taken func(string) bool) (bridge, vxlan string, err error) {
	for n := 0; n < 1000; n++ {
		b, v := candidateNames(externalID, n)
		if bridgeFixed != "" {
			b = bridgeFixed
		} else if taken(b) {
			continue
		}
		if taken(v) {
			continue
		}
		return b, v, nil
	}
	return "", "", fmt.Errorf("no free link name for instance %q", externalID)
}

// alias returns the alias marking a link as ours.
func alias(externalID string) string {
	a := AliasPrefix + externalID
	if len(a) > maxAlias {
		a = a[:maxAlias]
	}
	return a
}

// isOurs reports whether a link alias marks it as created by this driver.
func isOurs(linkAlias string) bool { return strings.HasPrefix(linkAlias, AliasPrefix) }
