package bgp

import (
	"sync"

	"bagpipe/internal/route"
)

// outMsg is one item for the session writer: a route event, or an End-of-RIB
// marker when eor is set.
type outMsg struct {
	ev  route.Event
	eor route.Family
}

// outQueue is the unbounded inbox of a peer's writer, filled by Deliver on
// the engine goroutine (which must never block) and drained by the writer.
type outQueue struct {
	mu     sync.Mutex
	items  []outMsg
	spare  []outMsg // drained slice, reused for the next fill
	notify chan struct{}
}

func newOutQueue() *outQueue { return &outQueue{notify: make(chan struct{}, 1)} }

func (q *outQueue) pushEvents(events []route.Event) {
	q.mu.Lock()
	if q.items == nil {
		q.items, q.spare = q.spare[:0], nil
	}
	for _, ev := range events {
		q.items = append(q.items, outMsg{ev: ev})
	}
	q.mu.Unlock()
	q.wake()
}

func (q *outQueue) pushEOR(families []route.Family) {
	q.mu.Lock()
	for _, f := range families {
		q.items = append(q.items, outMsg{eor: f})
	}
	q.mu.Unlock()
	q.wake()
}

func (q *outQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take returns everything queued (nil if empty). The caller gives the slice
// back with recycle once done with it.
func (q *outQueue) take() []outMsg {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	return items
}

// recycle lets the queue reuse a slice returned by take.
func (q *outQueue) recycle(items []outMsg) {
	clear(items) // drop route pointers
	q.mu.Lock()
	if cap(items) <= 1<<16 {
		q.spare = items[:0]
	}
	q.mu.Unlock()
}

func (q *outQueue) clear() {
	q.mu.Lock()
	q.items = nil
	q.mu.Unlock()
}

func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
