package engine

import (
	"context"
	"sync"
)

// Queue is an unbounded FIFO with one consumer, used as a worker's inbox so
// that the engine never blocks on a slow worker. Producers append batches;
// the consumer takes everything queued at once.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue[T any]() *Queue[T] { return &Queue[T]{notify: make(chan struct{}, 1)} }

// Push appends items and wakes the consumer.
func (q *Queue[T]) Push(items ...T) {
	q.mu.Lock()
	q.items = append(q.items, items...)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Take waits until items are queued (or ctx is done) and returns them all.
func (q *Queue[T]) Take(ctx context.Context) ([]T, error) {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 {
			return items, nil
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Len returns the number of queued items.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Clear drops everything queued.
func (q *Queue[T]) Clear() {
	q.mu.Lock()
	q.items = nil
	q.mu.Unlock()
}
