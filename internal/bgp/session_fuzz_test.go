package bgp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"bagpipe/internal/dataplane"
	"bagpipe/internal/dataplane/dummy"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
	"bagpipe/internal/vpn"
)

// Route targets imported by the VPN instances of FuzzPeerSession (and
// carried by its seeds), and the limit of routes a peer may send.
const (
	fuzzVRFRT       = "64512:1"
	fuzzEVIRT       = "64512:2"
	fuzzMaxPrefixes = 32
	fuzzMaxInput    = 4096
)

// fuzzSentinelPrefix is the prefix of the route sent after each input: once
// it is processed, everything before it is.
const fuzzSentinelPrefix = "10.255.255.0/24"

// FuzzPeerSession sends arbitrary bytes from a peer, on an established
// session over a loopback TCP connection, to the real speaker, engine and
// VPN instances (a VRF importing 64512:1 and an EVI importing 64512:2, on
// the dummy dataplane; Flowspec redirections create redirection VRFs). The
// peer announces no graceful restart and the speaker has max_prefixes =
// 32. After each input:
//
//   - nothing panicked;
//   - the session is still established, or the speaker ended it with the
//     NOTIFICATION RFC 4271/7606 require (header, OPEN in Established,
//     session-fatal UPDATE errors, Cease for max_prefixes), or without one
//     when the peer sent a NOTIFICATION; malformed attributes are treated
//     as withdraw (RFC 7606), the counter says how many UPDATEs were;
//   - while established, the engine stores exactly the routes the peer
//     advertised minus those it withdrew (or were treated as withdraw),
//     with their content, and each instance holds those it imports;
//   - once the session is closed (by the speaker, or by the peer after the
//     checks), no route or subscription of the peer is left in the engine,
//     the instances and their dataplanes are back to their state before
//     the input, and the redirection VRFs, labels and RDs are released.
//
// The expected outcome comes from a model that frames and decodes the same
// bytes offline with the session's decoder and applies the readLoop rules
// (FuzzReadUpdate and FuzzAcceptedAsIs check the decoding itself).
func FuzzPeerSession(f *testing.F) {
	for _, s := range peerSessionSeeds(f) {
		f.Add(s)
	}
	h := newSessionHarness(f)
	f.Fuzz(func(t *testing.T, data []byte) { h.run(t, data) })
}

// peerSessionSeeds are byte streams a peer could send after the handshake.
func peerSessionSeeds(t testing.TB) [][]byte {
	cat := func(msgs ...any) []byte {
		var b []byte
		for _, m := range msgs {
			switch m := m.(type) {
			case *bgp.BGPMessage:
				b = append(b, serialize(t, m)...)
			case []byte:
				b = append(b, m...)
			}
		}
		return b
	}
	enc := newEncoder(allFams, fakeIP, func(string, ...any) {})
	encode := func(kind route.EventKind, rs ...*route.Route) []byte {
		var out []byte
		var items []outMsg
		for _, r := range rs {
			items = append(items, outMsg{ev: route.Event{Kind: kind, Route: r}})
		}
		enc.encode(items, func(b []byte) error {
			out = append(out, b...)
			return nil
		})
		return out
	}
	rd := route.NewRDIP(fakeIP, 1)
	mac, _ := route.ParseMAC("52:54:00:00:10:01")
	eviAttrs := &route.Attrs{RTs: []route.RT{route.MustParseRT(fuzzEVIRT)}, Encaps: []route.Encap{route.EncapVXLAN},
		PMSI: &route.PMSI{Type: route.PMSIIngressReplication, Label: 5000, Endpoint: fakeIP}}
	macIP := &route.Route{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMACIP, RD: rd, MAC: mac,
		Prefix: netip.MustParsePrefix("10.0.1.9/32")}, Label: 5000, NextHop: fakeIP, Attrs: eviAttrs}
	imet := &route.Route{NLRI: route.NLRI{Family: route.EVPN, Type: route.EVPNMulticast, RD: rd,
		Prefix: netip.MustParsePrefix("127.0.0.2/32")}, NextHop: fakeIP, Attrs: eviAttrs}
	flow, _ := FlowFromText("destination 10.0.0.0/24 protocol tcp destination-port ==80")
	flowRoute := &route.Route{NLRI: route.NLRI{Family: route.FlowVPN, RD: rd, Flow: flow},
		Attrs: &route.Attrs{RTs: []route.RT{route.MustParseRT(fuzzVRFRT)}, HasRedirect: true, Redirect: route.MustParseRT("64512:3")}}

	adv := vpnUpdate(t, "10.1.0.0/16", 101, fuzzVRFRT)
	badOrigin := vpnUpdate(t, "10.1.0.0/16", 101, fuzzVRFRT)
	badOrigin.Body.(*bgp.BGPUpdate).PathAttributes[1] = bgp.NewPathAttributeOrigin(7)
	own, _ := bgp.NewPathAttributeOriginatorId(localIP)
	badMarker := serialize(t, bgp.NewBGPKeepAliveMessage())
	badMarker[3] = 0
	refresh := bgp.NewBGPRouteRefreshMessage(uint16(bgp.AFI_IP), 0, bgp.SAFI_MPLS_VPN)
	open := defaultOpen().message()

	// One UPDATE with more routes than max_prefixes.
	vrd, _ := bgp.NewRouteDistinguisherIPAddressAS(fakeIP, 1)
	var many []bgp.PathNLRI
	for i := range fuzzMaxPrefixes + 1 {
		n, _ := bgp.NewLabeledVPNIPAddrPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i), 0}), 24), *bgp.NewMPLSLabelStack(200), vrd)
		many = append(many, bgp.PathNLRI{NLRI: n})
	}
	mp, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv4_VPN, many, fakeIP)
	ec, _ := bgp.ParseRouteTarget(fuzzVRFRT)
	tooMany := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{mp, bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{ec})}, nil)

	// An E-VPN route of a type GoBGP does not know (see
	// TestUnknownEVPNRouteType).
	unknownEVPN := encode(route.Advertise, macIP)
	if i := bytes.Index(unknownEVPN, append([]byte{0, 25, 70, 4}, fakeIP.AsSlice()...)); i < 0 || unknownEVPN[i+9] != 2 {
		t.Fatal("E-VPN NLRI not found")
	} else {
		unknownEVPN[i+9] = 7
	}
	whole := serialize(t, adv)
	return [][]byte{
		{},
		cat(adv),
		cat(adv, vpnWithdraw(t, "10.1.0.0/16")),
		cat(adv, badOrigin, vpnUpdate(t, "10.3.0.0/16", 103, fuzzVRFRT)),
		cat(vpnUpdate(t, "10.4.0.0/16", 104, fuzzVRFRT, own), vpnUpdate(t, "10.5.0.0/16", 105, fuzzVRFRT+"0")),
		cat(encode(route.Advertise, macIP, imet), encode(route.Withdraw, imet)),
		cat(rtcUpdate(64512, fuzzVRFRT), rtcUpdate(0, ""), rtcWithdraw(64512, fuzzVRFRT)),
		cat(encode(route.Advertise, flowRoute), adv, encode(route.Withdraw, flowRoute)),
		cat(encode(route.Advertise, flowRoute)),
		cat(tooMany),
		cat(adv, badMarker),
		cat(adv, bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, nil)),
		cat(adv, open),
		cat(bgp.NewBGPKeepAliveMessage(), refresh, bgp.NewEndOfRib(bgp.RF_IPv4_VPN), bgp.NewEndOfRib(bgp.RF_RTC_UC)),
		cat(adv, whole[:len(whole)-5]),
		cat(unknownEVPN, adv),
	}
}

// sessionHarness is the stack FuzzPeerSession drives: the env's speaker and
// engine, a VPN manager with two instances, and a local worker importing
// what the VRF imports (it sees the sentinel route go by).
type sessionHarness struct {
	e        *env
	mgr      *vpn.Manager
	vrf, evi *vpn.Instance
	sink     *fakeWorker
	logs     *ringLog
	rng      *rand.Rand
	base     stackState
}

// stackState is what must be the same before and after each input.
type stackState struct {
	instances, labels, rds int
	vrfRoutes, eviRoutes   map[route.Family]int
	vrfDP, eviDP           string
}

func newSessionHarness(f *testing.F) *sessionHarness {
	logs := &ringLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e := newEnvLog(f, true, func(c *Config) {
		c.ReconnectDelay = time.Millisecond
		c.MaxPrefixes = fuzzMaxPrefixes
		c.MaxPrefixesRetry = time.Millisecond
		c.GracefulRestart = false // no stale routes: every route goes with the session
	}, log)
	mgr := vpn.NewManager(vpn.Config{Engine: e.eng, Log: log, BGPAddress: localIP,
		Drivers:   []dataplane.Driver{dummy.New(dataplane.IPVPN, localIP, nil), dummy.New(dataplane.EVPN, localIP, nil)},
		FlowCodec: vpn.FlowCodec{Encode: ClassifierToFlow, Decode: FlowToClassifier}})
	f.Cleanup(func() { mgr.Stop(context.Background()) }) // before the engine and the speaker stop
	attach := func(typ dataplane.VPNType, id, mac, ip, port, rt string) *vpn.Instance {
		m, _ := route.ParseMAC(mac)
		req := &vpn.AttachRequest{VPNType: typ, InstanceID: id, MACString: mac, MAC: m,
			IPString: ip, IP: netip.PrefixFrom(netip.MustParseAddr(ip), 32),
			LocalPort: &dataplane.LocalPort{LinuxIf: port, Raw: map[string]any{"linuxif": port}},
			ImportRTs: []route.RT{route.MustParseRT(rt)}, ExportRTs: []route.RT{route.MustParseRT(rt)},
			Direction: dataplane.Both}
		if typ == dataplane.IPVPN {
			req.GatewayIP = netip.MustParseAddr("10.0.0.254")
		}
		if err := mgr.Attach(context.Background(), req); err != nil {
			f.Fatal(err)
		}
		return mgr.Instance(id)
	}
	h := &sessionHarness{
		e:    e,
		mgr:  mgr,
		vrf:  attach(dataplane.IPVPN, "fuzz-vrf", "52:54:00:00:00:01", "10.0.0.1", "tap-fuzz1", fuzzVRFRT),
		evi:  attach(dataplane.EVPN, "fuzz-evi", "52:54:00:00:00:02", "10.0.1.1", "tap-fuzz2", fuzzEVIRT),
		sink: newFakeWorker("fuzz-sink"),
		logs: logs,
		rng:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	e.eng.Subscribe(h.sink, engine.Match{Family: route.IPv4VPN, RT: route.MustParseRT(fuzzVRFRT)})
	h.quiesce(f)
	h.base = h.state(f)
	return h
}

// run sends one input on a new session and checks the invariants.
func (h *sessionHarness) run(t *testing.T, data []byte) {
	if len(data) > fuzzMaxInput {
		data = data[:fuzzMaxInput]
	}
	h.logs.reset()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("input %x\nspeaker logs:\n%s", data, h.logs.String())
		}
	})
	// The stream, completed so that the speaker does not wait for the
	// rest of a message, then the sentinel route.
	stream := alignStream(data)
	marker := h.rng.Uint32() | 1
	stream = append(stream, serialize(t, vpnUpdate(t, fuzzSentinelPrefix, 99, fuzzVRFRT, bgp.NewPathAttributeMultiExitDisc(marker)))...)
	want := runSessionModel(t, stream)

	fp := h.e.fp
	fp.t = t
	h.sink.q.Clear()
	h.sink.buf = nil
	before := h.e.peerStatus()
	fp.handshake(defaultOpen()) // no Graceful Restart capability
	conn := fp.conn

	// The speaker's messages, read until it closes the connection.
	var (
		mu      sync.Mutex
		notifs  []string
		readErr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, perr, err := fp.r.next()
			mu.Lock()
			switch {
			case err != nil:
				if !errors.Is(err, io.EOF) && !isReset(err) && !strings.Contains(err.Error(), "use of closed") {
					readErr = err
				}
			case msg == nil:
				readErr = fmt.Errorf("malformed message from the speaker: %v", perr)
			default:
				if n, ok := msg.Body.(*bgp.BGPNotification); ok {
					notifs = append(notifs, fmt.Sprintf("%d/%d", n.ErrorCode, n.ErrorSubcode))
				}
			}
			mu.Unlock()
			if err != nil || msg == nil {
				return
			}
		}
	}()
	go func() { _, _ = conn.Write(stream) }() // errors: the speaker closed the session, as the model tells
	worker := h.e.peerStatus().Worker

	if want.up {
		h.waitSentinel(t, done, marker)
		mu.Lock()
		if len(notifs) > 0 {
			t.Errorf("NOTIFICATIONs %v on a session that stays up", notifs)
		}
		mu.Unlock()
		h.checkRoutes(t, worker, want.routes)
		st := h.e.peerStatus()
		if st.Protocol.State != Established || len(st.Families) != 4 || st.GracefulRestart.PeerRestartTime != 0 ||
			st.GracefulRestart.StaleRoutes != 0 {
			t.Errorf("peer status %+v", st)
		}
		h.quiesce(t)
		h.checkInstances(t, want.routes)
		conn.Close()
	}
	select {
	case <-done:
		conn.Close()
	case <-time.After(ioTimeout):
		t.Fatalf("the speaker did not close the session (expected: %s)", want.end)
	}
	mu.Lock()
	got := strings.Join(notifs, ",")
	err := readErr
	mu.Unlock()
	if err != nil {
		t.Errorf("reading the speaker's messages: %v", err)
	}
	if !want.up && got != want.notification {
		t.Errorf("session ended (%s) with NOTIFICATIONs [%s], want [%s]", want.end, got, want.notification)
	}

	// The session ends: the peer goroutine cleans its routes up.
	deadline := time.Now().Add(ioTimeout)
	for {
		st := h.e.peerStatus()
		if st.Stats.SessionsUp == before.Stats.SessionsUp+1 && st.Protocol.State != Established {
			if d := st.Stats.TreatAsWithdraw - before.Stats.TreatAsWithdraw; d != uint64(want.treatAsWithdraw) {
				t.Errorf("%d UPDATEs treated as withdraw, want %d", d, want.treatAsWithdraw)
			}
			if d := st.Stats.MaxPrefixesExceeded - before.Stats.MaxPrefixesExceeded; (d != 0) != want.maxPrefixes {
				t.Errorf("max prefixes exceeded %d times, want %v", d, want.maxPrefixes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not closed: %+v", st.Protocol)
		}
		time.Sleep(100 * time.Microsecond)
	}
	h.checkRoutes(t, worker, nil)
	// Every instance processed the withdrawals: the redirection VRFs no
	// longer used are being removed, in the background.
	h.quiesce(t)
	h.mgr.WaitBackground()
	h.quiesce(t)
	if got := h.state(t); !equalState(got, h.base) {
		t.Errorf("state after the session differs:\n got %+v\nwant %+v", got, h.base)
	}
}

// waitSentinel waits for the sentinel route (MED marker) from the peer.
func (h *sessionHarness) waitSentinel(t *testing.T, closed <-chan struct{}, marker uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	go func() {
		select {
		case <-closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		evs, err := h.sink.q.Take(ctx)
		if err != nil {
			select {
			case <-closed:
				t.Fatal("the speaker closed the session before the sentinel route, the model expected it up")
			default:
				t.Fatal("sentinel route not received")
			}
		}
		for _, ev := range evs {
			r := ev.Route
			if ev.Kind == route.Advertise && r.Source != nil && r.Source.Peer && r.NLRI.Prefix.String() == fuzzSentinelPrefix &&
				r.Attrs.HasMED && r.Attrs.MED == marker {
				return
			}
		}
	}
}

// checkRoutes compares the routes the engine stores from the peer with want.
func (h *sessionHarness) checkRoutes(t *testing.T, w engine.Worker, want map[route.NLRI]*route.Route) {
	t.Helper()
	var got []*route.Route
	var subs []engine.Match
	if err := h.e.eng.Inspect(t.Context(), func(v engine.View) {
		got = v.RoutesOf(w)
		if want == nil {
			subs = v.Subscriptions(w)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(subs) > 0 {
		t.Errorf("subscriptions of the closed session left: %v", subs)
	}
	for _, r := range got {
		m := want[r.NLRI]
		switch {
		case m == nil:
			t.Errorf("engine stores %s, not advertised (or withdrawn)", describe(r))
		case !route.SameContent(r, m):
			t.Errorf("engine stores %s %+v, the peer advertised %s %+v", describe(r), *r.Attrs, describe(m), *m.Attrs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("engine stores %d routes from the peer, want %d", len(got), len(want))
	}
}

// checkInstances compares the routes held by the VRF and the EVI with the
// routes of the peer they import.
func (h *sessionHarness) checkInstances(t *testing.T, routes map[route.NLRI]*route.Route) {
	t.Helper()
	vrfWant, eviWant := copyCounts(h.base.vrfRoutes), copyCounts(h.base.eviRoutes)
	vrfRT, eviRT := route.MustParseRT(fuzzVRFRT), route.MustParseRT(fuzzEVIRT)
	for _, r := range routes {
		switch f := r.NLRI.Family; {
		case (f == route.IPv4VPN || f == route.FlowVPN) && r.Attrs.HasRT(vrfRT):
			vrfWant[f]++
		case f == route.EVPN && r.Attrs.HasRT(eviRT):
			eviWant[f]++
		}
	}
	if got := h.vrf.ReceivedRoutes(); !equalCounts(got, vrfWant) {
		t.Errorf("VRF holds %v routes, want %v", got, vrfWant)
	}
	if got := h.evi.ReceivedRoutes(); !equalCounts(got, eviWant) {
		t.Errorf("EVI holds %v routes, want %v", got, eviWant)
	}
}

// quiesce waits until the engine and every instance processed everything
// (twice in a row with the same instances: processing may create
// redirection VRFs, which subscribe and get a replay).
func (h *sessionHarness) quiesce(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	var last []*vpn.Instance
	clean := 0
	for clean < 2 {
		if err := h.e.eng.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		insts := h.mgr.Instances()
		busy := false
		for _, inst := range insts {
			if instancePending(inst) > 0 {
				busy = true
			}
		}
		switch {
		case busy || !sameInstances(insts, last):
			clean = 0
		default:
			clean++
		}
		last = insts
		if busy {
			if time.Now().After(deadline) {
				t.Fatal("VPN instances still busy")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func (h *sessionHarness) state(t testing.TB) stackState {
	t.Helper()
	labels, rds := h.mgr.Allocated()
	return stackState{
		instances: h.mgr.InstanceCount(), labels: labels, rds: rds,
		vrfRoutes: h.vrf.ReceivedRoutes(), eviRoutes: h.evi.ReceivedRoutes(),
		vrfDP: instanceLG(t, h.vrf, "dataplane"), eviDP: instanceLG(t, h.evi, "dataplane"),
	}
}

func equalState(a, b stackState) bool {
	return a.instances == b.instances && a.labels == b.labels && a.rds == b.rds &&
		equalCounts(a.vrfRoutes, b.vrfRoutes) && equalCounts(a.eviRoutes, b.eviRoutes) &&
		a.vrfDP == b.vrfDP && a.eviDP == b.eviDP
}

func copyCounts(m map[route.Family]int) map[route.Family]int {
	out := map[route.Family]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func equalCounts(a, b map[route.Family]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func sameInstances(a, b []*vpn.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// instanceLG returns the JSON of an entry of an instance's looking glass.
func instanceLG(t testing.TB, inst *vpn.Instance, name string) string {
	t.Helper()
	for _, e := range inst.LookingGlass() {
		if e.Name == name {
			b, err := json.Marshal(e.Value())
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no %q in the looking glass of %s", name, inst.Name)
	return ""
}

// instancePending returns the route events delivered to inst and not
// processed yet (its looking glass "event queue length").
func instancePending(inst *vpn.Instance) int {
	for _, e := range inst.LookingGlass() {
		if e.Name == "internals" {
			if m, ok := e.Value().(map[string]any); ok {
				n, _ := m["event queue length"].(int)
				return n
			}
		}
	}
	return 0
}

// sessionModel is the expected outcome of a byte stream sent by a peer on
// an established session.
type sessionModel struct {
	up              bool   // the session survives the whole stream
	end             string // why it ends, when it does
	notification    string // "code/subcode" of the NOTIFICATION the speaker sends ("": none)
	maxPrefixes     bool   // ended for max_prefixes
	treatAsWithdraw int
	routes          map[route.NLRI]*route.Route // stored while up
}

// runSessionModel frames and decodes stream offline as session.readLoop
// does, with its own decoder.
func runSessionModel(t testing.TB, stream []byte) sessionModel {
	r := newMsgReader(bytes.NewReader(stream))
	s := &session{dec: decoder{routerID: localIP, families: allFams}, log: slog.New(slog.DiscardHandler)}
	m := sessionModel{routes: map[route.NLRI]*route.Route{}}
	sent := func(code, subcode uint8, why string) sessionModel {
		m.end, m.notification = why, fmt.Sprintf("%d/%d", code, subcode)
		return m
	}
	for {
		msg, perr, err := r.next()
		switch {
		case errors.Is(err, io.EOF):
			m.up = true
			return m
		case err != nil:
			t.Fatalf("model: %v (stream not aligned)", err)
		case msg == nil:
			return sent(perr.TypeCode, perr.SubTypeCode, "malformed message: "+perr.Error())
		}
		switch b := msg.Body.(type) {
		case *bgp.BGPNotification:
			m.end = "NOTIFICATION received"
			return m
		case *bgp.BGPKeepAlive, *bgp.BGPRouteRefresh:
		case *bgp.BGPUpdate:
			if eor, _ := b.IsEndOfRib(); eor && perr == nil {
				continue
			}
			res, handling := s.decode(b, perr)
			if handling != nil {
				switch handling.ErrorHandling {
				case bgp.ERROR_HANDLING_SESSION_RESET, bgp.ERROR_HANDLING_AFISAFI_DISABLE:
					return sent(handling.TypeCode, handling.SubTypeCode, "malformed UPDATE: "+handling.Error())
				case bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW:
					m.treatAsWithdraw++
					for _, ev := range res.events {
						if ev.Kind == route.Advertise {
							t.Fatalf("model: UPDATE treated as withdraw advertises %s", describe(ev.Route))
						}
					}
				}
			}
			for _, ev := range res.events {
				if ev.Kind == route.Advertise {
					m.routes[ev.Route.NLRI] = ev.Route
				} else {
					delete(m.routes, ev.Route.NLRI)
				}
			}
			if len(m.routes) > fuzzMaxPrefixes {
				m.maxPrefixes = true
				return sent(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED, "max_prefixes")
			}
		default:
			return sent(bgp.BGP_ERROR_FSM_ERROR, bgp.BGP_ERROR_SUB_RECEIVE_UNEXPECTED_MESSAGE_IN_ESTABLISHED_STATE,
				fmt.Sprintf("%T in Established", b))
		}
	}
}

// alignStream completes the last message of data, if cut, so that the
// speaker reads whole messages only: a cut header is completed with the
// end of a KEEPALIVE header, a cut body with zeros. A header the speaker
// rejects ends the stream as it is (the session ends there).
func alignStream(data []byte) []byte {
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	out := bytes.Clone(data)
	for pos := 0; ; {
		rest := len(out) - pos
		switch {
		case rest == 0:
			return out
		case rest < bgp.BGP_HEADER_LENGTH:
			out = append(out, ka[rest:]...)
			continue
		}
		var h bgp.BGPHeader
		if h.DecodeFromBytes(out[pos:pos+bgp.BGP_HEADER_LENGTH]) != nil || checkLength(&h, out[pos+16:pos+18]) != nil {
			return out
		}
		if rest < int(h.Len) {
			out = append(out, make([]byte, int(h.Len)-rest)...)
		}
		pos += int(h.Len)
	}
}

// ringLog keeps the last logs of the speaker and the instances (shown
// when an input fails).
type ringLog struct {
	mu  sync.Mutex
	buf []byte
}

const ringLogMax = 256 << 10

func (l *ringLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	if len(l.buf) > ringLogMax {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-ringLogMax/2:]...)
	}
	return len(b), nil
}

func (l *ringLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = l.buf[:0]
}

func (l *ringLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
