package engine

import (
	"hash/maphash"
	"iter"

	"bagpipe/internal/route"
)

// nlriSeed seeds the NLRI hashes of every routeSet.
var nlriSeed = maphash.MakeSeed()

// routeSet holds the routes one source advertised, by NLRI. A Go map keyed
// by the NLRI itself (an 80-byte struct) costs about 180 bytes per route at
// a million routes, its table being half empty after each growth; keyed by
// a 64-bit hash of the NLRI, a slot is 16 bytes. The route itself holds
// its NLRI, so a hit is confirmed by comparing it; the rare NLRI whose hash
// collides with another stored one goes to a small second map keyed by the
// NLRI.
type routeSet struct {
	byHash map[uint64]*route.Route
	extra  map[route.NLRI]*route.Route // hash collisions (almost always nil)
}

func newRouteSet() routeSet { return routeSet{byHash: map[uint64]*route.Route{}} }

func hashNLRI(n *route.NLRI) uint64 { return maphash.Comparable(nlriSeed, *n) }

// get returns the route stored for n, or nil.
func (s *routeSet) get(n *route.NLRI) *route.Route {
	if r := s.byHash[hashNLRI(n)]; r != nil && r.NLRI == *n {
		return r
	}
	if len(s.extra) != 0 {
		return s.extra[*n]
	}
	return nil
}

// put stores r, replacing the route of the same NLRI if any.
func (s *routeSet) put(r *route.Route) {
	if len(s.extra) != 0 {
		if _, ok := s.extra[r.NLRI]; ok {
			s.extra[r.NLRI] = r
			return
		}
	}
	h := hashNLRI(&r.NLRI)
	if cur := s.byHash[h]; cur != nil && cur.NLRI != r.NLRI {
		if s.extra == nil {
			s.extra = map[route.NLRI]*route.Route{}
		}
		s.extra[r.NLRI] = r
		return
	}
	s.byHash[h] = r
}

// remove deletes the route stored for n, if any.
func (s *routeSet) remove(n *route.NLRI) {
	h := hashNLRI(n)
	if r := s.byHash[h]; r != nil && r.NLRI == *n {
		delete(s.byHash, h)
		return
	}
	if len(s.extra) != 0 {
		delete(s.extra, *n)
		if len(s.extra) == 0 {
			s.extra = nil
		}
	}
}

// len returns the number of routes.
func (s *routeSet) len() int { return len(s.byHash) + len(s.extra) }

// all yields every route; the loop body may remove the route it is given.
func (s *routeSet) all() iter.Seq[*route.Route] {
	return func(yield func(*route.Route) bool) {
		for _, r := range s.byHash {
			if !yield(r) {
				return
			}
		}
		for _, r := range s.extra {
			if !yield(r) {
				return
			}
		}
	}
}
