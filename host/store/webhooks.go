package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Webhook lets an outside system start runs of one workflow: a POST to the
// hook's URL carrying its token. Only the token's hash is stored.
type Webhook struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Workflow  string    `json:"workflow"`
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// PutWebhook creates or replaces the webhook of a workflow.
func (s *Store) PutWebhook(ctx context.Context, h Webhook) error {
	if h.CreatedAt.IsZero() {
		h.CreatedAt = time.Now().UTC()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhooks (tenant, workflow, id, token_hash, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, workflow) DO UPDATE SET id = excluded.id, token_hash = excluded.token_hash, created_at = excluded.created_at`,
		h.Tenant, h.Workflow, h.ID, h.TokenHash, ms(h.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: put webhook: %w", err)
	}
	return nil
}

// Webhook returns a webhook by id.
func (s *Store) Webhook(ctx context.Context, id string) (Webhook, error) {
	return s.webhook(ctx, `id = ?`, id)
}

// WorkflowWebhook returns the webhook of a workflow.
func (s *Store) WorkflowWebhook(ctx context.Context, tenant, workflow string) (Webhook, error) {
	return s.webhook(ctx, `tenant = ? AND workflow = ?`, tenant, workflow)
}

func (s *Store) webhook(ctx context.Context, cond string, args ...any) (Webhook, error) {
	var h Webhook
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, tenant, workflow, token_hash, created_at FROM webhooks WHERE `+cond, args...).
		Scan(&h.ID, &h.Tenant, &h.Workflow, &h.TokenHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, ErrNotFound
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("store: webhook: %w", err)
	}
	h.CreatedAt = fromMS(created)
	return h, nil
}

// DeleteWebhook removes the webhook of a workflow.
func (s *Store) DeleteWebhook(ctx context.Context, tenant, workflow string) error {
	return s.update(ctx, `DELETE FROM webhooks WHERE tenant = ? AND workflow = ?`, tenant, workflow)
}
