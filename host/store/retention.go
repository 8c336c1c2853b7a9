package store

import (
	"context"
	"fmt"
	"time"
)

// Retention says which finished runs to keep. Zero fields keep everything.
type Retention struct {
	MaxAge  time.Duration // delete finished runs created longer ago than this
	MaxRuns int           // keep at most this many finished runs per tenant, newest first
}

// Prune deletes finished runs (and their events) outside the retention
// policy and returns how many it deleted. Queued and running runs are
// never deleted.
func (s *Store) Prune(ctx context.Context, r Retention) (int, error) {
	deleted := 0
	finished := []any{StatusSucceeded, StatusFailed, StatusCancelled, StatusInterrupted}
	if r.MaxAge > 0 {
		cutoff := ms(time.Now().Add(-r.MaxAge))
		res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE created_at < ? AND status IN (?, ?, ?, ?)`,
			append([]any{cutoff}, finished...)...)
		if err != nil {
			return deleted, fmt.Errorf("store: prune by age: %w", err)
		}
		n, _ := res.RowsAffected()
		deleted += int(n)
	}
	if r.MaxRuns > 0 {
		res, err := s.db.ExecContext(ctx, `DELETE FROM runs WHERE id IN (
			SELECT id FROM (
				SELECT id, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY created_at DESC, id DESC) AS n
				FROM runs WHERE status IN (?, ?, ?, ?)
			) WHERE n > ?)`, append(finished, r.MaxRuns)...)
		if err != nil {
			return deleted, fmt.Errorf("store: prune by count: %w", err)
		}
		n, _ := res.RowsAffected()
		deleted += int(n)
	}
	return deleted, nil
}
