// Package hashindex is a map from keys to objects that hold their own key,
// stored under a 64-bit hash of the key instead of the key itself.
//
// A Go map keyed by a large struct (an NLRI is 80 bytes) costs about twice
// its slot size per entry at a million entries, its table being half empty
// after each growth: 180-200 bytes per route. Keyed by a hash, a slot is 16
// bytes. The object stored holds its key (a route holds its NLRI), so a
// lookup confirms a hit by comparing the key it derives from the object; the
// rare key whose hash collides with another stored one goes to a second map
// keyed by the key itself.
package hashindex

import (
	"hash/maphash"
	"iter"
)

var seed = maphash.MakeSeed()

// Index maps keys K to objects *V; keyOf derives an object's key.
type Index[K comparable, V any] struct {
	byHash map[uint64]*V
	extra  map[K]*V // hash collisions (almost always nil)
	keyOf  func(*V) K
}

// New returns an empty index.
func New[K comparable, V any](keyOf func(*V) K) Index[K, V] {
	return Index[K, V]{byHash: map[uint64]*V{}, keyOf: keyOf}
}

func hash[K comparable](k K) uint64 { return maphash.Comparable(seed, k) }

// Get returns the object stored for k, or nil.
func (x *Index[K, V]) Get(k K) *V {
	if v := x.byHash[hash(k)]; v != nil && x.keyOf(v) == k {
		return v
	}
	if len(x.extra) != 0 {
		return x.extra[k]
	}
	return nil
}

// Put stores v under its key, replacing the object of the same key.
func (x *Index[K, V]) Put(v *V) {
	k := x.keyOf(v)
	if len(x.extra) != 0 {
		if _, ok := x.extra[k]; ok {
			x.extra[k] = v
			return
		}
	}
	h := hash(k)
	if cur := x.byHash[h]; cur != nil && x.keyOf(cur) != k {
		if x.extra == nil {
			x.extra = map[K]*V{}
		}
		x.extra[k] = v
		return
	}
	x.byHash[h] = v
}

// Delete removes the object stored for k, if any.
func (x *Index[K, V]) Delete(k K) {
	h := hash(k)
	if v := x.byHash[h]; v != nil && x.keyOf(v) == k {
		delete(x.byHash, h)
		return
	}
	if len(x.extra) != 0 {
		delete(x.extra, k)
		if len(x.extra) == 0 {
			x.extra = nil
		}
	}
}

// DeleteObject removes v, stored under k, without deriving any key from the
// objects (for objects that can no longer tell their key).
func (x *Index[K, V]) DeleteObject(k K, v *V) {
	h := hash(k)
	if x.byHash[h] == v {
		delete(x.byHash, h)
		return
	}
	if len(x.extra) != 0 && x.extra[k] == v {
		delete(x.extra, k)
		if len(x.extra) == 0 {
			x.extra = nil
		}
	}
}

// Len returns the number of objects.
func (x *Index[K, V]) Len() int { return len(x.byHash) + len(x.extra) }

// All yields every object, in no particular order; the loop body may
// delete the object it is given.
func (x *Index[K, V]) All() iter.Seq[*V] {
	return func(yield func(*V) bool) {
		for _, v := range x.byHash {
			if !yield(v) {
				return
			}
		}
		for _, v := range x.extra {
			if !yield(v) {
				return
			}
		}
	}
}

// Clear removes every object.
func (x *Index[K, V]) Clear() {
	clear(x.byHash)
	x.extra = nil
}
