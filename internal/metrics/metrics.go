// Package metrics exposes the daemon's state and activity as Prometheus
// metrics (GET /metrics).
//
// Hot paths stay cheap: the state metrics (BGP sessions, stored routes,
// VPN instances, queue depths) are read when Prometheus scrapes, from
// counters the components already keep (bgp.Router.Peers, the engine's
// route counters, the instances' inboxes and best path trackers); nothing
// is counted per route for the metrics. Only events that have no state to
// read later are counted as they happen: attach and detach requests (from
// the API layer, api.RequestObserver) and dataplane calls (through the
// instrumented driver decorator, instrumented.Observer), a few per
// request or per best path change.
//
// docs/operations.md lists every metric.
package metrics

import (
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"bagpipe/internal/bgp"
	"bagpipe/internal/dataplane"
	"bagpipe/internal/engine"
	"bagpipe/internal/route"
	"bagpipe/internal/version"
)

// Namespace prefixes every bagpipe metric name.
const Namespace = "bagpipe"

// Engine is what the metrics read from the route engine (*engine.Engine),
// without waiting for its goroutine.
type Engine interface {
	StoredRoutes() []engine.SourceRoutes
	QueueLength() int
	QueueCapacity() int
}

// InstanceStatus is what the metrics show of a VPN instance.
type InstanceStatus struct {
	ExternalID string // vpn_instance_id of the API
	Name       string // worker name, e.g. "VRF-1": its route source
	VPNType    string // "ipvpn" or "evpn"
	// QueueLength is the number of route events waiting in its inbox.
	QueueLength int
	// Received is the number of routes it holds from the engine, per
	// family.
	Received map[route.Family]int
}

// Sources are the components the state metrics read at scrape time; nil
// ones are skipped.
type Sources struct {
	Engine Engine
	// Peers lists the BGP peers (bgp.Router.Peers).
	Peers     func() []bgp.PeerStatus
	Instances func() []InstanceStatus
	// StartTime is the daemon start time (time.Now when zero).
	StartTime time.Time
}

// Metrics is the metrics registry of a daemon. It implements
// api.RequestObserver and instrumented.Observer.
type Metrics struct {
	reg *prometheus.Registry

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	dpCalls     *prometheus.CounterVec
	dpErrors    *prometheus.CounterVec
	dpDuration  *prometheus.HistogramVec
}

// New returns the metrics of a daemon reading src, with the Go runtime and
// process metrics.
func New(src Sources) *Metrics {
	if src.StartTime.IsZero() {
		src.StartTime = time.Now()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "api", Name: "requests_total",
			Help: "Attach and detach requests answered, by operation, VPN type (empty when invalid) and HTTP status code.",
		}, []string{"operation", "vpn_type", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time to answer attach and detach requests (validation, VPN instance and dataplane work, route publication), by operation and VPN type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "vpn_type"}),
		dpCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "dataplane", Name: "operations_total",
			Help: "Dataplane driver calls, by VPN type, driver and operation.",
		}, []string{"vpn_type", "driver", "operation"}),
		dpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "dataplane", Name: "errors_total",
			Help: "Dataplane driver calls that failed, by VPN type, driver and operation.",
		}, []string{"vpn_type", "driver", "operation"}),
		dpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "dataplane", Name: "operation_duration_seconds",
			Help:    "Duration of dataplane driver calls, by VPN type and operation.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"vpn_type", "operation"}),
	}
	for _, op := range []string{"attach", "detach"} {
		for _, t := range []string{string(dataplane.IPVPN), string(dataplane.EVPN)} {
			m.apiRequests.WithLabelValues(op, t, "200")
			m.apiDuration.WithLabelValues(op, t)
		}
	}
	m.reg.MustRegister(
		m.apiRequests, m.apiDuration, m.dpCalls, m.dpErrors, m.dpDuration,
		&stateCollector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry, to register more collectors or gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats (GET and
// HEAD only).
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// APIRequest implements api.RequestObserver.
func (m *Metrics) APIRequest(op, vpnType string, status int, took time.Duration) {
	m.apiRequests.WithLabelValues(op, vpnType, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(op, vpnType).Observe(took.Seconds())
}

// DataplaneCall implements instrumented.Observer.
func (m *Metrics) DataplaneCall(vpnType dataplane.VPNType, driver, op string, took time.Duration, err error) {
	m.dpCalls.WithLabelValues(string(vpnType), driver, op).Inc()
	if err != nil {
		m.dpErrors.WithLabelValues(string(vpnType), driver, op).Inc()
	}
	m.dpDuration.WithLabelValues(string(vpnType), op).Observe(took.Seconds())
}

// stateCollector reads the daemon state at scrape time.
type stateCollector struct{ src Sources }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

var (
	descBuildInfo = desc("build_info", "Always 1, labelled with the bagpipe version and the Go version that built it.", "version", "goversion")
	descStartTime = desc("start_time_seconds", "Start time of the daemon, in seconds since the epoch.")

	descPeerUp    = desc("bgp_peer_up", "1 when the BGP session with the peer is established, else 0.", "peer")
	descPeerState = desc("bgp_peer_state",
		"BGP FSM state of the peer: 1 for the current state, 0 for the others.", "peer", "state")
	descPeerLastTransition = desc("bgp_peer_last_transition_timestamp_seconds",
		"Time of the last BGP state change of the peer, in seconds since the epoch.", "peer")
	descPeerEstablished = desc("bgp_peer_sessions_established_total",
		"BGP sessions established with the peer.", "peer")
	descPeerFlaps = desc("bgp_peer_flaps_total",
		"Established BGP sessions with the peer that went down.", "peer")
	descPeerUpdatesIn   = desc("bgp_peer_updates_received_total", "UPDATE messages received from the peer.", "peer")
	descPeerUpdatesOut  = desc("bgp_peer_updates_sent_total", "UPDATE messages sent to the peer.", "peer")
	descPeerRouteEvents = desc("bgp_peer_route_events_received_total",
		"Route advertisements and withdrawals received from the peer.", "peer")
	descPeerOwnDropped = desc("bgp_peer_own_routes_dropped_total",
		"Routes received from the peer carrying our ORIGINATOR_ID (reflected back to us), dropped.", "peer")
	descPeerTreatAsWithdraw = desc("bgp_peer_treat_as_withdraw_total",
		"Malformed UPDATE messages from the peer handled as withdrawals (RFC 7606).", "peer")
	descPeerQueue = desc("bgp_peer_queue_length",
		"Route events waiting to be sent to the peer.", "peer")

	descRoutesReceived = desc("bgp_routes_received",
		"Routes currently learned from each BGP peer, by address family.", "peer", "family")
	descRoutesAdvertised = desc("bgp_routes_advertised",
		"Routes this node currently originates (VPN instance routes, RT Constraint routes), by address family.", "family")

	descInstances          = desc("vpn_instances", "VPN instances, by VPN type.", "vpn_type")
	descInstanceAdvertised = desc("vpn_instance_routes_advertised",
		"Routes the VPN instance currently advertises, by address family.", "instance", "name", "vpn_type", "family")
	descInstanceReceived = desc("vpn_instance_routes_received",
		"Routes the VPN instance currently imports (candidates of its best path selection), by address family.",
		"instance", "name", "vpn_type", "family")
	descInstanceQueue = desc("vpn_instance_queue_length",
		"Route events waiting to be processed by the VPN instance.", "instance", "name", "vpn_type")

	descEngineQueue = desc("engine_queue_length",
		"Operations (route publications, subscriptions, looking glass reads) waiting for the route engine.")
	descEngineQueueCapacity = desc("engine_queue_capacity",
		"Size of the route engine's operation queue; publishers wait when it is full.")
)

var allDescs = []*prometheus.Desc{
	descBuildInfo, descStartTime,
	descPeerUp, descPeerState, descPeerLastTransition, descPeerEstablished, descPeerFlaps,
	descPeerUpdatesIn, descPeerUpdatesOut, descPeerRouteEvents, descPeerOwnDropped,
	descPeerTreatAsWithdraw, descPeerQueue,
	descRoutesReceived, descRoutesAdvertised,
	descInstances, descInstanceAdvertised, descInstanceReceived, descInstanceQueue,
	descEngineQueue, descEngineQueueCapacity,
}

// bgpStates are the FSM states, for the one-hot state metric.
var bgpStates = []bgp.State{bgp.Idle, bgp.Connect, bgp.Active, bgp.OpenSent, bgp.OpenConfirm, bgp.Established}

// engineSource is the route source of the RTC routes the engine generates.
const engineSource = "BGPManager"

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBuildInfo, 1, version.Version, runtime.Version())
	gauge(descStartTime, float64(c.src.StartTime.UnixNano())/1e9)

	if c.src.Peers != nil {
		for _, p := range c.src.Peers() {
			peer := p.PeerAddress.String()
			up := p.Protocol.State == bgp.Established
			gauge(descPeerUp, b2f(up), peer)
			for _, s := range bgpStates {
				gauge(descPeerState, b2f(p.Protocol.State == s), peer, s.String())
			}
			if t := p.Protocol.LastTransitionTime; !t.IsZero() {
				gauge(descPeerLastTransition, float64(t.UnixNano())/1e9, peer)
			}
			flaps := p.Stats.SessionsUp
			if up && flaps > 0 {
				flaps-- // the current session has not gone down
			}
			counter(descPeerEstablished, p.Stats.SessionsUp, peer)
			counter(descPeerFlaps, flaps, peer)
			counter(descPeerUpdatesIn, p.Stats.UpdatesReceived, peer)
			counter(descPeerUpdatesOut, p.Stats.UpdatesSent, peer)
			counter(descPeerRouteEvents, p.Stats.RoutesReceived, peer)
			counter(descPeerOwnDropped, p.Stats.OwnRoutesDropped, peer)
			counter(descPeerTreatAsWithdraw, p.Stats.TreatAsWithdraw, peer)
			gauge(descPeerQueue, float64(p.QueueLength), peer)
		}
	}

	var instances []InstanceStatus
	if c.src.Instances != nil {
		instances = c.src.Instances()
	}
	byName := make(map[string]*InstanceStatus, len(instances))
	perType := map[string]int{string(dataplane.IPVPN): 0, string(dataplane.EVPN): 0}
	for i := range instances {
		inst := &instances[i]
		byName[inst.Name] = inst
		perType[inst.VPNType]++
		labels := []string{inst.ExternalID, inst.Name, inst.VPNType}
		gauge(descInstanceQueue, float64(inst.QueueLength), labels...)
		for _, f := range sortedFamilies(inst.Received) {
			gauge(descInstanceReceived, float64(inst.Received[f]), append(labels, f.String())...)
		}
	}
	for t, n := range perType {
		gauge(descInstances, float64(n), t)
	}

	if c.src.Engine != nil {
		gauge(descEngineQueue, float64(c.src.Engine.QueueLength()))
		gauge(descEngineQueueCapacity, float64(c.src.Engine.QueueCapacity()))
		advertised := map[route.Family]int{}
		for _, f := range route.Families {
			advertised[f] = 0
		}
		for _, sr := range c.src.Engine.StoredRoutes() {
			fam := sr.Family.String()
			switch {
			case sr.Source.Peer:
				gauge(descRoutesReceived, float64(sr.Routes), peerAddress(sr.Source.Name), fam)
				continue
			case sr.Source.Name == engineSource:
			default:
				if inst := byName[sr.Source.Name]; inst != nil {
					gauge(descInstanceAdvertised, float64(sr.Routes), inst.ExternalID, inst.Name, inst.VPNType, fam)
				}
			}
			advertised[sr.Family] += sr.Routes
		}
		for _, f := range route.Families {
			gauge(descRoutesAdvertised, float64(advertised[f]), f.String())
		}
	}
}

// peerAddress returns the address of a peer route source ("BGP-<ip>").
func peerAddress(source string) string {
	if len(source) > 4 && source[:4] == "BGP-" {
		return source[4:]
	}
	return source
}

func sortedFamilies(m map[route.Family]int) []route.Family {
	out := make([]route.Family, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
