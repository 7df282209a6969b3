package dedup

import "testing"

func TestWindow(t *testing.T) {
	w := NewWindow(3)
	for i, c := range []struct {
		id  uint64
		dup bool
	}{
		{1, false}, {2, false}, {1, true}, {3, false}, {2, true},
		{4, false}, // pushes 1 out
		{1, false}, // so 1 is new again, and pushes 2 out
		{2, false},
		{4, true}, {1, true}, {3, false},
	} {
		if got := w.Add(c.id); got != c.dup {
			t.Errorf("step %d: Add(%d) = %v, want %v", i, c.id, got, c.dup)
		}
	}
	if w.Len() != 3 || w.Size() != 3 {
		t.Errorf("Len %d Size %d, want 3 3", w.Len(), w.Size())
	}
}

// BenchmarkAdd is the cost per event of a full window of the default size.
func BenchmarkAdd(b *testing.B) {
	w := NewWindow(100_000)
	b.ReportAllocs()
	id := uint64(0x9e3779b97f4a7c15)
	for b.Loop() {
		id = id*6364136223846793005 + 1442695040888963407
		w.Add(id)
	}
}

// TestWindowMatchesMap checks the table against a plain map and ring over
// many IDs whose home slots collide, so that removals move entries.
func TestWindowMatchesMap(t *testing.T) {
	const size = 500
	w := NewWindow(size)
	ring, set := []uint64{}, map[uint64]bool{}
	x, dups := uint64(1), 0
	for step := range 200_000 {
		x = x*6364136223846793005 + 1442695040888963407
		// 2048 distinct IDs in 16 home slots: long probe
		// runs, frequent repeats.
		id := (x>>60)<<60 | (x>>40&0x7f)<<8 | 2 // never 0 or 1, which Add treats as one
		want := set[id]
		if !want {
			if len(ring) == size {
				delete(set, ring[0])
				ring = ring[1:]
			}
			ring = append(ring, id)
			set[id] = true
		}
		if got := w.Add(id); got != want {
			t.Fatalf("step %d: Add(%#x) = %v, want %v", step, id, got, want)
		}
		if w.Len() != len(set) {
			t.Fatalf("step %d: Len %d, want %d", step, w.Len(), len(set))
		}
		if want {
			dups++
		}
	}
	if dups < 10_000 || dups > 190_000 {
		t.Errorf("%d copies in 200000 steps: the test does not exercise both paths", dups)
	}
}
