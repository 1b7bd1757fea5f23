package engine

import (
	"bagpipe/internal/route"
)

// View is a read-only window on the engine state, valid only inside the
// function given to Inspect.
type View struct{ e *Engine }

// WorkerInfo describes one worker known to the engine.
type WorkerInfo struct {
	Source        *route.Source
	Worker        Worker
	Subscriptions []Match
	Routes        int
}

// Workers lists the workers (sources and subscribers).
func (v View) Workers() []WorkerInfo {
	out := make([]WorkerInfo, 0, len(v.e.workers))
	for _, ws := range v.e.workers {
		wi := WorkerInfo{Source: ws.src, Worker: ws.w, Routes: ws.routes.Len()}
		for m := range ws.subs {
			wi.Subscriptions = append(wi.Subscriptions, m)
		}
		out = append(out, wi)
	}
	return out
}

// Subscriptions returns the subscriptions of w.
func (v View) Subscriptions(w Worker) []Match {
	ws := v.e.workers[w]
	if ws == nil {
		return nil
	}
	out := make([]Match, 0, len(ws.subs))
	for m := range ws.subs {
		out = append(out, m)
	}
	return out
}

// RoutesOf returns the routes w advertised.
func (v View) RoutesOf(w Worker) []*route.Route {
	ws := v.e.workers[w]
	if ws == nil {
		return nil
	}
	out := make([]*route.Route, 0, ws.routes.Len())
	for r := range ws.routes.All() {
		out = append(out, r)
	}
	return out
}

// EachRoute calls f for every stored route.
func (v View) EachRoute(f func(*route.Route)) {
	for _, ws := range v.e.workers {
		for r := range ws.routes.All() {
			f(r)
		}
	}
}

// Counts returns the number of stored routes, excluding RTC routes, split
// into routes received from peers and local routes. It reads counters the
// engine maintains (O(1)); Engine.RouteCounts gives the same numbers
// without going through Inspect.
func (v View) Counts() (received, local int) { return v.e.RouteCounts() }

// GeneratedRTC returns the RTC routes the engine advertises.
func (v View) GeneratedRTC() []*route.Route { return v.RoutesOf(v.e.self) }
