package hashindex

import (
	"runtime"
	"testing"
)

type key struct {
	a, b uint64
	s    string
	pad  [48]byte
}

type obj struct {
	k key
	v int
}

func keyOf(o *obj) key { return o.k }

func mk(i int) *obj { return &obj{k: key{a: uint64(i), b: uint64(i % 7), s: "x"}, v: i} }

func TestIndex(t *testing.T) {
	x := New(keyOf)
	const n = 10000
	for i := range n {
		x.Put(mk(i))
	}
	if x.Len() != n {
		t.Fatalf("len %d, want %d", x.Len(), n)
	}
	for i := range n {
		if got := x.Get(mk(i).k); got == nil || got.v != i {
			t.Fatalf("key %d: got %v", i, got)
		}
	}
	o5 := mk(5)
	o5.v = -5
	x.Put(o5)
	if x.Len() != n || x.Get(o5.k) != o5 {
		t.Fatal("replacement not stored in place")
	}
	if x.Get(mk(n+1).k) != nil {
		t.Error("unknown key found")
	}
	seen := 0
	for o := range x.All() {
		if o.k.a%2 == 0 {
			x.Delete(o.k) // deletion while iterating
		}
		seen++
	}
	if seen != n || x.Len() != n/2 {
		t.Errorf("iterated %d, %d left; want %d and %d", seen, x.Len(), n, n/2)
	}
	x.Clear()
	if x.Len() != 0 || x.Get(mk(1).k) != nil {
		t.Error("clear")
	}
}

// Two keys with the same hash are both kept, found and deleted.
func TestCollision(t *testing.T) {
	x := New(keyOf)
	a, b, c := mk(1), mk(2), mk(3)
	x.byHash[hash(b.k)] = a // simulate a collision: a stored under b's hash
	x.Put(b)
	if x.extra[b.k] != b || x.Get(b.k) != b || x.Len() != 2 {
		t.Fatalf("colliding key not kept aside: extra %v", x.extra)
	}
	b2 := mk(2)
	x.Put(b2)
	if x.Get(b2.k) != b2 || x.Len() != 2 {
		t.Error("replacement of a colliding key")
	}
	x.Put(c)
	x.Delete(b.k)
	if x.Get(b.k) != nil || x.extra != nil || x.Len() != 2 {
		t.Errorf("deletion of a colliding key: extra %v, len %d", x.extra, x.Len())
	}
	n := 0
	for range x.All() {
		n++
	}
	if n != 2 {
		t.Errorf("iterated %d objects, want 2", n)
	}
}

// BenchmarkMemory reports the live heap per entry of the index itself
// (objects excluded) against a map keyed by the 80-byte key.
func BenchmarkMemory(b *testing.B) {
	const n = 1_000_000
	objs := make([]*obj, n)
	for i := range objs {
		objs[i] = mk(i)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range b.N {
		before := heap()
		x := New(keyOf)
		for _, o := range objs {
			x.Put(o)
		}
		b.ReportMetric(float64(heap()-before)/n, "B/entry-index")
		runtime.KeepAlive(x)
		before = heap()
		m := map[key]*obj{}
		for _, o := range objs {
			m[o.k] = o
		}
		b.ReportMetric(float64(heap()-before)/n, "B/entry-map")
		runtime.KeepAlive(m)
	}
}
