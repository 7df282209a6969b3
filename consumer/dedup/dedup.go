// Package dedup remembers the events of a partition lately read, so that a
// copy of one is not counted again.
//
// Filebeat delivers at least once: when a broker wrote a batch but its
// answer was lost (a broker restarting, a timeout), filebeat sends the batch
// again, to the same partition (its partitioner keeps an event's partition
// for retries while the topic's partition count stays the same). The copy
// follows the original by about as many events as the partition takes
// during one retry, seconds of traffic; a window of the last events of each
// partition is therefore enough, and it is bounded.
package dedup

// Window holds the IDs of the last Size events added to it.
//
// The IDs are hashes already, so they index an open-addressing table
// directly: a Go map of the same IDs costs about four times as much per
// event (a consumer reads some 300,000 events a second per core).
type Window struct {
	ring  []uint64 // the IDs in the order they came, overwritten oldest first
	next  int      // index in ring of the next ID
	full  bool     // ring holds len(ring) IDs
	slots []uint64 // the table: an ID, or 0 for a free slot
	shift uint     // an ID's home slot is id >> shift
	n     int
}

// NewWindow returns an empty Window of size events; size must be positive.
func NewWindow(size int) *Window {
	// At most half full, so that probes stay short.
	bits := uint(1)
	for 1<<bits < 2*size {
		bits++
	}
	return &Window{ring: make([]uint64, size), slots: make([]uint64, 1<<bits), shift: 64 - bits}
}

// Size is how many IDs the window holds at most.
func (w *Window) Size() int { return len(w.ring) }

// Len is how many IDs the window holds.
func (w *Window) Len() int { return w.n }

// Add records id and reports whether it was already there: the event is a
// copy. A copy is not recorded again, so it does not push an older ID out.
func (w *Window) Add(id uint64) (dup bool) {
	if id == 0 {
		id = 1 // 0 marks a free slot; one ID in 2^64 shares 1's
	}
	mask := len(w.slots) - 1
	i := int(id >> w.shift)
	for ; w.slots[i] != 0; i = (i + 1) & mask {
		if w.slots[i] == id {
			return true
		}
	}
	if w.full {
		w.remove(w.ring[w.next])
		// The removal may have moved entries: find id's free slot again.
		for i = int(id >> w.shift); w.slots[i] != 0; i = (i + 1) & mask {
		}
	}
	w.slots[i] = id
	w.n++
	w.ring[w.next] = id
	w.next++
	if w.next == len(w.ring) {
		w.next, w.full = 0, true
	}
	return false
}

// remove takes id out of the table, moving back the entries after it that
// would otherwise no longer be found (linear probing without tombstones).
func (w *Window) remove(id uint64) {
	mask := len(w.slots) - 1
	i := int(id >> w.shift)
	for w.slots[i] != id {
		if w.slots[i] == 0 {
			return // not there (never happens: the ring and table agree)
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; w.slots[j] != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i when its home slot is not
		// in (i, j], cyclically.
		home := int(w.slots[j] >> w.shift)
		if (j-home)&mask >= (j-i)&mask {
			w.slots[i] = w.slots[j]
			i = j
		}
	}
	w.slots[i] = 0
	w.n--
}
