package vpn

import "testing"

func TestAllocatorLowestFirstAndUnique(t *testing.T) {
	a := NewAllocator("label", 16, 20)
	seen := map[uint32]bool{}
	for i := 0; i < 5; i++ {
		id, err := a.Allocate("x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if id != uint32(16+i) {
			t.Fatalf("allocation %d: got %d, want %d", i, id, 16+i)
		}
		if seen[id] {
			t.Fatalf("id %d allocated twice", id)
		}
		seen[id] = true
	}
	if _, err := a.Allocate("x", nil); err == nil {
		t.Fatal("allocation beyond max succeeded")
	}
}

func TestAllocatorReusesAsLateAsPossible(t *testing.T) {
	a := NewAllocator("label", 1, 4)
	one, _ := a.Allocate("a", nil)
	two, _ := a.Allocate("b", nil)
	a.Release(one)
	a.Release(two)
	// Never-used ids come first.
	if id, _ := a.Allocate("c", nil); id != 3 {
		t.Fatalf("got %d, want 3 (never used)", id)
	}
	if id, _ := a.Allocate("d", nil); id != 4 {
		t.Fatalf("got %d, want 4 (never used)", id)
	}
	// Then released ids, oldest release first.
	if id, _ := a.Allocate("e", nil); id != one {
		t.Fatalf("got %d, want %d (first released)", id, one)
	}
	if id, _ := a.Allocate("f", nil); id != two {
		t.Fatalf("got %d, want %d", id, two)
	}
	if a.Count() != 4 {
		t.Fatalf("count %d, want 4", a.Count())
	}
}

func TestAllocatorHintAndRelease(t *testing.T) {
	a := NewAllocator("bucket", 0, 10)
	h := uint32(5)
	if id, _ := a.Allocate("h", &h); id != 5 {
		t.Fatalf("hint not honoured: %d", id)
	}
	h2, _ := a.Allocate("h2", &h)
	if h2 == 5 {
		t.Fatal("busy hint allocated twice")
	}
	if a.Release(9) {
		t.Fatal("released an id never allocated")
	}
	if !a.Release(5) || a.Release(5) {
		t.Fatal("release of allocated id must succeed once")
	}
	if _, ok := a.InUse()[5]; ok {
		t.Fatal("released id still listed")
	}
	// Ids skipped by the hint are still handed out.
	got := map[uint32]bool{}
	for {
		id, err := a.Allocate("fill", nil)
		if err != nil {
			break
		}
		got[id] = true
	}
	got[h2] = true
	for id := uint32(0); id <= 10; id++ {
		if !got[id] {
			t.Fatalf("id %d never handed out", id)
		}
	}
}

// A hint below the lowest never-used id, still queued as released, is
// given once: the queue skips it while it is in use.
func TestAllocatorHintOfQueuedID(t *testing.T) {
	a := NewAllocator("label", 1, 5)
	h := uint32(4)
	if id, _ := a.Allocate("h", &h); id != 4 { // 1, 2, 3 queued as never used
		t.Fatalf("got %d", id)
	}
	h = 2
	if id, _ := a.Allocate("h2", &h); id != 2 {
		t.Fatalf("got %d", id)
	}
	seen := map[uint32]bool{2: true, 4: true}
	for {
		id, err := a.Allocate("fill", nil)
		if err != nil {
			break
		}
		if seen[id] {
			t.Fatalf("id %d given twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 5 {
		t.Fatalf("ids handed out: %v", seen)
	}
}
