package engine

import (
	"sync"
	"sync/atomic"

	"bagpipe/internal/route"
)

// Route counters, maintained by the engine goroutine as it stores and
// removes routes (one atomic add per route) and read from any goroutine
// without waiting for it: the looking glass summary and the metrics never
// queue behind route processing, and never walk the route table.

// familySlots is the size of arrays indexed by route.Family.
const familySlots = int(route.FlowVPN) + 1

// sourceCounts counts the routes one source stores, per family.
type sourceCounts struct {
	src    *route.Source
	routes [familySlots]atomic.Int64
}

// counters holds the engine-wide route counters.
type counters struct {
	received atomic.Int64 // non-RTC routes stored from BGP peers
	local    atomic.Int64 // non-RTC routes stored from local sources

	mu      sync.Mutex // guards sources (written by the engine goroutine)
	sources map[*workerState]*sourceCounts
}

// register starts counting the routes of a new worker (engine goroutine).
func (c *counters) register(ws *workerState) {
	ws.counts = &sourceCounts{src: ws.src}
	c.mu.Lock()
	if c.sources == nil {
		c.sources = map[*workerState]*sourceCounts{}
	}
	c.sources[ws] = ws.counts
	c.mu.Unlock()
}

// unregister forgets a worker whose routes are all withdrawn.
func (c *counters) unregister(ws *workerState) {
	c.mu.Lock()
	delete(c.sources, ws)
	c.mu.Unlock()
}

// stored counts a route added (delta 1) to, or removed (-1) from, the
// routes of ws.
func (c *counters) stored(ws *workerState, f route.Family, delta int64) {
	if int(f) < familySlots {
		ws.counts.routes[f].Add(delta)
	}
	if f == route.RTC {
		return
	}
	if ws.src.Peer {
		c.received.Add(delta)
	} else {
		c.local.Add(delta)
	}
}

// RouteCounts returns the number of stored routes, excluding RTC routes,
// split into routes received from peers and local routes (the looking
// glass route_counts). It does not wait for the engine goroutine.
func (e *Engine) RouteCounts() (received, local int) {
	return int(e.counts.received.Load()), int(e.counts.local.Load())
}

// SourceRoutes is the number of routes one source stores in one family.
type SourceRoutes struct {
	Source *route.Source
	Family route.Family
	Routes int
}

// StoredRoutes returns the number of routes each source currently stores,
// per family (families without routes are left out), including the RTC
// routes the engine generates (source "BGPManager"). It does not wait for
// the engine goroutine: it costs one lock and a few atomic loads per
// source.
func (e *Engine) StoredRoutes() []SourceRoutes {
	e.counts.mu.Lock()
	defer e.counts.mu.Unlock()
	out := make([]SourceRoutes, 0, len(e.counts.sources))
	for _, sc := range e.counts.sources {
		for f := range familySlots {
			if n := sc.routes[f].Load(); n != 0 {
				out = append(out, SourceRoutes{Source: sc.src, Family: route.Family(f), Routes: int(n)})
			}
		}
	}
	return out
}

// QueueLength returns the number of operations (publications,
// subscriptions, looking glass reads) waiting for the engine goroutine.
func (e *Engine) QueueLength() int { return len(e.ops) }

// QueueCapacity returns the size of the engine's operation queue: when it
// is full, publishers (BGP sessions, API calls) wait.
func (e *Engine) QueueCapacity() int { return cap(e.ops) }
