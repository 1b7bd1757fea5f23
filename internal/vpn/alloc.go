package vpn

import (
	"fmt"
	"maps"
	"sync"
)

// Allocator hands out identifiers (MPLS labels, RD numbers) in [min, max].
// It gives the lowest never-used id first and reuses released ids only once
// every id has been used, oldest release first ("reuse as late as
// possible"), so a released label is not given to a new endpoint while
// remote nodes may still send traffic to it. Each id carries a description
// for the looking glass.
type Allocator struct {
	mu       sync.Mutex
	name     string
	min, max uint32
	next     uint64 // lowest never-used id
	released []uint32
	used     map[uint32]string
}

// NewAllocator returns an allocator of ids in [min, max].
func NewAllocator(name string, min, max uint32) *Allocator {
	return &Allocator{name: name, min: min, max: max, next: uint64(min), used: map[uint32]string{}}
}

// Allocate returns a free id. If hint is non-nil and *hint is free and in
// range, it is the one allocated.
func (a *Allocator) Allocate(desc string, hint *uint32) (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if hint != nil && *hint >= a.min && *hint <= a.max {
		if _, busy := a.used[*hint]; !busy {
			id := *hint
			if uint64(id) >= a.next {
				// Ids skipped below the hint stay never-used: remember them.
				for skipped := a.next; skipped < uint64(id); skipped++ {
					a.released = append(a.released, uint32(skipped))
				}
				a.next = uint64(id) + 1
			}
			// An id below next may still be queued in released: it is
			// skipped there while in use (O(1) per hint, however many
			// ids a restore asks for).
			a.used[id] = desc
			return id, nil
		}
	}
	if a.next <= uint64(a.max) {
		id := uint32(a.next)
		a.next++
		a.used[id] = desc
		return id, nil
	}
	for len(a.released) > 0 {
		id := a.released[0]
		a.released = a.released[1:]
		if _, busy := a.used[id]; !busy {
			a.used[id] = desc
			return id, nil
		}
	}
	return 0, fmt.Errorf("no %s available: all %d are in use", a.name, uint64(a.max)-uint64(a.min)+1)
}

// Release frees id. Releasing an id that is not allocated is a no-op and
// returns false.
func (a *Allocator) Release(id uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.used[id]; !ok {
		return false
	}
	delete(a.used, id)
	a.released = append(a.released, id)
	return true
}

// InUse returns a copy of the allocated ids and their descriptions.
func (a *Allocator) InUse() map[uint32]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.used)
}

// Count returns the number of allocated ids.
func (a *Allocator) Count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
