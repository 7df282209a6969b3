package agg

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"sort"
)

// TopK keeps the most frequent keys of a stream in bounded memory with the
// space-saving algorithm (Metwally et al.): it tracks at most Cap keys; a
// key that is not tracked when the table is full replaces the key with the
// smallest count and inherits that count as its possible overestimate. Every
// key more frequent than n/Cap (n lines seen) is guaranteed to be tracked, and
// a tracked key's true count lies in [Count-Err, Count].
//
// Summaries merge (Merge) by adding counts, so minutes and backends combine;
// a merged summary keeps the same guarantee with the errors added up.
type TopK struct {
	cap   int
	index map[string]*topEntry
	h     topHeap // min-heap on count: h[0] is the key to evict
}

// TopEntry is one tracked key with its count and overestimate.
type TopEntry struct {
	Key   string `json:"k"`
	Count uint64 `json:"n"`
	Err   uint64 `json:"e,omitempty"`
}

type topEntry struct {
	TopEntry
	pos int // index in the heap
}

// NewTopK returns an empty summary tracking at most capacity keys.
func NewTopK(capacity int) *TopK {
	if capacity < 1 {
		capacity = 1
	}
	return &TopK{cap: capacity, index: make(map[string]*topEntry, capacity)}
}

// Len returns the number of tracked keys.
func (t *TopK) Len() int { return len(t.h) }

// Add counts key once. The key's bytes are copied only when it becomes
// tracked, so counting a tracked key does not allocate.
func (t *TopK) Add(key []byte) { t.addN(key, 1, 0) }

func (t *TopK) addN(key []byte, n, err uint64) {
	if e, ok := t.index[string(key)]; ok {
		e.Count += n
		e.Err += err
		heap.Fix(&t.h, e.pos)
		return
	}
	if len(t.h) < t.cap {
		e := &topEntry{TopEntry: TopEntry{Key: string(key), Count: n, Err: err}}
		t.index[e.Key] = e
		heap.Push(&t.h, e)
		return
	}
	// Replace the least frequent key: the newcomer may have been seen up to
	// min times while untracked.
	e := t.h[0]
	delete(t.index, e.Key)
	min := e.Count
	e.Key, e.Count, e.Err = string(key), min+n, min+err
	t.index[e.Key] = e
	heap.Fix(&t.h, 0)
}

// Merge adds o's counts into t, keeping t's capacity.
func (t *TopK) Merge(o *TopK) {
	for _, e := range o.h {
		t.addN([]byte(e.Key), e.Count, e.Err)
	}
}

// AddEntries adds decoded entries (a stored list) into t, as Merge does
// with a summary, without building one.
func (t *TopK) AddEntries(list []TopEntry) {
	for _, e := range list {
		t.addN([]byte(e.Key), e.Count, e.Err)
	}
}

// Top returns at most n tracked keys, most frequent first (ties by key, so
// the order is stable); n <= 0 returns all of them.
func (t *TopK) Top(n int) []TopEntry {
	out := make([]TopEntry, 0, len(t.h))
	for _, e := range t.h {
		out = append(out, e.TopEntry)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// MarshalTop encodes the n most frequent keys as JSON, the form stored in
// MySQL. Keys that are not UTF-8 (a decoded \xFC in a URI) are written with
// U+FFFD by encoding/json.
func (t *TopK) MarshalTop(n int) ([]byte, error) {
	return json.Marshal(t.Top(n))
}

// UnmarshalTopK decodes a stored list into a summary of the given capacity.
func UnmarshalTopK(data []byte, capacity int) (*TopK, error) {
	t := NewTopK(capacity)
	if len(data) == 0 {
		return t, nil
	}
	var list []TopEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode top list: %w", err)
	}
	for _, e := range list {
		t.addN([]byte(e.Key), e.Count, e.Err)
	}
	return t, nil
}

// topHeap is a min-heap of entries by count.
type topHeap []*topEntry

func (h topHeap) Len() int           { return len(h) }
func (h topHeap) Less(i, j int) bool { return h[i].Count < h[j].Count }
func (h topHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *topHeap) Push(x any) {
	e := x.(*topEntry)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *topHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
