// Package linux is the "linux" E-VPN dataplane driver (spec §7.2): one
// Linux bridge and one VXLAN device per E-VPN instance, programmed through
// netlink (github.com/vishvananda/netlink) only; it never runs ip, brctl or
// bridge.
//
// # Kernel objects of an instance
//
//   - The bridge: the existing bridge named by the attachment's "linuxbr"
//     (never created, never deleted, ports never moved), or a bridge of
//     ours, created with STP off, no IPv6 link-local address and a MAC of
//     its own, and deleted with the instance. (A bridge left to take the
//     lowest MAC of its ports changes address as ports come and go, and
//     the kernel then flushes all its neighbour entries, permanent ones
//     included; for the same reason our VXLAN devices get a MAC starting
//     with fe:, so that adding or removing them never changes the address
//     of a linuxbr bridge.)
//   - The VXLAN device, enslaved to the bridge: VNI = the instance label,
//     local address = the dataplane local address, destination UDP port
//     vxlan_dst_port (4789 by default; 0 or empty: kernel default), no
//     learning, no "proxy" flag. When a linuxbr bridge already has a VXLAN
//     port of that VNI, it is used as is and never deleted (as the
//     reference); only the entries we added are removed at cleanup.
//   - Local endpoints: the port (linuxif) is put on a bridge of ours and set
//     up; a static bridge FDB entry sends the endpoint's MAC to that port.
//   - A MAC/IP route: a VXLAN FDB entry MAC → remote VTEP with the route's
//     VNI ("bridge fdb replace MAC dev V dst PE vni N"), a static bridge FDB
//     entry MAC → VXLAN port, and, when the route has an IP, a permanent
//     neighbour entry IP → MAC on the bridge device (ARP suppression).
//   - An inclusive multicast route: a flooding entry 00:00:00:00:00:00 →
//     remote VTEP appended to the VXLAN FDB (ingress replication).
//
// The instance methods are called one at a time; entries are reference
// counted so that the two routes FRR advertises for one host (MAC-only and
// MAC+IP) give one FDB entry, removed with the last of them. When two
// remote VTEPs advertise the same MAC, the latest one is installed; when it
// goes, the previous one is put back.
//
// # ARP suppression without breaking ARP across the tunnel
//
// The reference creates its VXLAN devices with the "proxy" flag and puts
// the neighbour entries on the VXLAN device: the kernel then answers ARP
// requests for known IPs itself, but it also swallows every other ARP
// frame sent into the tunnel, ARP replies included, so a remote host whose
// own VTEP does not answer for us (FRR with neigh_suppress, a host whose IP
// was not advertised) never gets a reply (spec §11). This driver leaves the
// VXLAN device without "proxy" and sets the bridge port flag neigh_suppress
// on the VXLAN port instead, with the neighbour entries on the bridge
// device: the bridge answers ARP requests (and IPv6 neighbour
// solicitations) from local ports for remote IPs it knows, does not flood
// those requests into the tunnel, and lets everything else through,
// replies included. The VXLANProxy option restores the reference
// behaviour, for comparison tests only.
//
// # Names
//
// Our bridge is "evpn---<external id>" and our VXLAN device
// "vxlan--<external id>", truncated to 15 bytes, as the reference names
// them, unless that name is already taken, in this process or in the
// kernel: two instance ids sharing their first 8 bytes ("evpn-net1" and
// "evpn-net2") would get the same truncated name. The next candidates then
// replace the id by 8 hex digits derived from it (FNV-1a 32 of the
// external id, then of "<id>#2", "<id>#3", ...), e.g. "evpn---3a5f09c1"
// and "vxlan--3a5f09c1": both names of an instance always share their
// suffix. The name chosen is shown by the looking glass ("linux_bridge",
// "vxlan_if").
//
// # Ownership, clean-up and start-up reconciliation
//
// Links we create carry the alias (IFLA_IFALIAS) "bagpipe-bgp:evpn:<id>".
// The last detach of an instance (Cleanup) deletes its VXLAN device and,
// if ours, its bridge: nothing is left behind (the reference leaks its
// VXLAN devices). ResetState, which the VPN manager calls before the first
// E-VPN instance of a run is created (and which a bagpipe-bgp-cleanup
// tool calls), deletes what an earlier run left after a crash or a
// SIGKILL: every VXLAN device and bridge with our alias, plus those named
// like the reference's (bridges "evpn---*", VXLAN devices "vxlan--*", as
// the reference's reset_state); the neighbour entries an earlier run added
// on a linuxbr bridge are removed with its VXLAN device. The attachments
// replayed by the client (after /ping changed) then recreate each object
// once: nothing is duplicated. Links held by live instances are never
// touched.
//
// # MTU
//
// VXLAN adds 50 bytes over IPv4 (outer Ethernet 14 + IPv4 20 + UDP 8 +
// VXLAN 8; 70 over IPv6). The VXLAN device gets the MTU of the interface
// holding the local address minus that overhead (1450 on a 1500-byte
// underlay), and a bridge forwards nothing larger to it: the interface of
// each VM must have an MTU no larger than that (Neutron's network MTU; the
// looking glass shows "mtu"). bagpipe-rest-attach --port netns sets it with
// --mtu (default 1450).
package linux
