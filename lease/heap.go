package lease

import (
	"container/heap"
	"time"
)

// slot is a lease's place in one timeHeap: the time it is keyed by and
// its index in the heap (-1 when it is not in the heap).
type slot struct {
	at  time.Time
	idx int
}

// timeHeap is an indexed min-heap of leases ordered by one of their
// slots' times, ties broken by lease ID so that the order never depends
// on insertion history. The slot accessor picks which slot (expiry or
// checkpoint) this heap owns. Push, Fix and Remove are O(log n).
type timeHeap struct {
	ls   []*lease
	slot func(*lease) *slot
}

func (h *timeHeap) Len() int { return len(h.ls) }

func (h *timeHeap) Less(i, j int) bool {
	a, b := h.slot(h.ls[i]).at, h.slot(h.ls[j]).at
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h.ls[i].id < h.ls[j].id
}

func (h *timeHeap) Swap(i, j int) {
	h.ls[i], h.ls[j] = h.ls[j], h.ls[i]
	h.slot(h.ls[i]).idx = i
	h.slot(h.ls[j]).idx = j
}

// Push and Pop implement heap.Interface; use set and remove instead.
func (h *timeHeap) Push(x any) {
	l := x.(*lease)
	h.slot(l).idx = len(h.ls)
	h.ls = append(h.ls, l)
}

func (h *timeHeap) Pop() any {
	n := len(h.ls) - 1
	l := h.ls[n]
	h.ls[n] = nil
	h.ls = h.ls[:n]
	h.slot(l).idx = -1
	return l
}

// set keys l at t, inserting it if it is not in the heap.
func (h *timeHeap) set(l *lease, t time.Time) {
	s := h.slot(l)
	s.at = t
	if s.idx < 0 {
		heap.Push(h, l)
		return
	}
	heap.Fix(h, s.idx)
}

// remove takes l out of the heap if it is in it.
func (h *timeHeap) remove(l *lease) {
	if s := h.slot(l); s.idx >= 0 {
		heap.Remove(h, s.idx)
	}
}

// peek returns the earliest lease, or nil when the heap is empty.
func (h *timeHeap) peek() *lease {
	if len(h.ls) == 0 {
		return nil
	}
	return h.ls[0]
}

// reset empties the heap.
func (h *timeHeap) reset() {
	for i, l := range h.ls {
		h.slot(l).idx = -1
		h.ls[i] = nil
	}
	h.ls = h.ls[:0]
}

// build replaces the heap's contents with ls (whose slot times are set)
// in O(n).
func (h *timeHeap) build(ls []*lease) {
	h.reset()
	for _, l := range ls {
		h.slot(l).idx = len(h.ls)
		h.ls = append(h.ls, l)
	}
	heap.Init(h)
}
