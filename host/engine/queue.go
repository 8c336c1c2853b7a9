package engine

import "container/heap"

// indexQueue is a min-heap of step indexes: the ready step that comes first
// in workflow order starts first.
type indexQueue struct{ h intHeap }

func newIndexQueue(capacity int) *indexQueue {
	return &indexQueue{h: make(intHeap, 0, min(capacity, 1024))}
}

func (q *indexQueue) push(i int) { heap.Push(&q.h, i) }
func (q *indexQueue) pop() int   { return heap.Pop(&q.h).(int) }
func (q *indexQueue) len() int   { return len(q.h) }

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
