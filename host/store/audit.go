package store

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: who did (or was refused) what.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Tenant  string    `json:"tenant"`
	Actor   string    `json:"actor,omitempty"`
	Action  string    `json:"action"`  // "run.start", "run.cancel", "workflow.put", "auth", ...
	Target  string    `json:"target"`  // workflow name, run id, route
	Outcome string    `json:"outcome"` // "ok" or "denied"
	Detail  string    `json:"detail,omitempty"`
	Remote  string    `json:"remote,omitempty"`
}

// Audit appends an entry to the audit log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (time, tenant, actor, action, target, outcome, detail, remote)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ms(e.Time), e.Tenant, e.Actor, e.Action, e.Target, e.Outcome, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Tenant  string // "" = every tenant
	Outcome string // "" = both
	Before  int64  // only entries with ID < Before (0 = from the newest)
	Limit   int    // 0 = 100
}

// AuditLog returns entries newest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, time, tenant, actor, action, target, outcome, detail, remote FROM audit WHERE 1=1`
	var args []any
	if f.Tenant != "" {
		q += ` AND tenant = ?`
		args = append(args, f.Tenant)
	}
	if f.Outcome != "" {
		q += ` AND outcome = ?`
		args = append(args, f.Outcome)
	}
	if f.Before > 0 {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Tenant, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail, &e.Remote); err != nil {
			return nil, err
		}
		e.Time = fromMS(t)
		out = append(out, e)
	}
	return out, rows.Err()
}
