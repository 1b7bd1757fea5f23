// Package bgp is bagpipe's BGP speaker: a small iBGP implementation for the
// VPN families bagpipe uses (IPv4 MPLS-VPN, EVPN, RT Constraint and
// Flowspec-VPN), speaking to route reflectors from a compute node.
//
// # Codec
//
// Messages are encoded and decoded with GoBGP's packet library
// (github.com/osrg/gobgp/v4/pkg/packet/bgp); this is the only package that
// imports it. An UPDATE is decoded once, validated (RFC 7606 error
// handling) and converted to route events once, on the session's reader
// goroutine; the routes of one UPDATE share one *route.Attrs and are
// published to the engine as one batch. Route events are converted back
// once, on the writer goroutine, which packs consecutive events of the same
// kind, family, next hop and *route.Attrs into UPDATEs of up to 4096 bytes
// and flushes its buffered writer when its queue is drained.
//
// # Sessions
//
// Each configured peer is an engine.Worker (source "BGP-<peer ip>") with a
// goroutine that owns its TCP connections: it dials (every ConnectRetry
// after a failure, ReconnectDelay after the loss of an established
// session), takes incoming connections from the listener, and resolves
// connection collisions (RFC 4271 §6.8) when a connection receives a valid
// OPEN (a peer that announced graceful restart and opens a new connection
// while its session is established restarted: the old session is closed as
// if TCP had failed, RFC 4724 §4.2). Every connection runs the OpenSent and OpenConfirm states in its own
// goroutine and asks the peer goroutine before going on; the one that
// becomes Established serves the session: its goroutine reads (any message
// restarts the hold timer) while a writer goroutine sends the queued route
// events and the keepalives.
//
// Once established, the peer subscribes to the RTC routes when RT
// Constraint is negotiated, and then to each route target the peer asks for
// with RTC routes; otherwise to every route of the negotiated families. End
// of RIB follows the replay of the initial subscriptions (for the VPN
// families under RT Constraint with a graceful restart peer: the replay of
// what the peer's RTC routes selected, once its RTC End-of-RIB came; a
// restarting peer gets every VPN route at once). When the session ends,
// engine.Cleanup withdraws the routes learned from the peer and drops its
// subscriptions; the next session starts over with a full replay.
//
// # Graceful restart, MD5, maximum prefixes, peers at run time
//
// With Config.GracefulRestart (gr.go), the routes of a peer that announced
// Graceful Restart survive the loss of its session as stale routes, left
// in the engine untouched, until the peer's End-of-RIB, the stale timer or
// its restart time (RFC 4724 §4.2, RFC 8538 for NOTIFICATIONs); Synced
// closes once every peer sent End-of-RIB for every family. TCP MD5 keys
// (md5.go) are set on outgoing sockets and per peer on the listener.
// MaxPrefixes closes the session of a peer with too many routes (Cease,
// RFC 4486; the session counts the routes it received and not withdrawn,
// not the stale ones of the previous session) and retries later. UpdatePeers adds and removes peers at run
// time (SIGHUP).
package bgp
