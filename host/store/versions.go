package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Version is one stored version of a workflow file.
type Version struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Actor     string    `json:"actor,omitempty"`
	Action    string    `json:"action"` // "put", "delete", "disk" (seen changed on disk)
	SHA256    string    `json:"sha256"`
	Size      int       `json:"size"`
	Source    []byte    `json:"-"`
}

// SaveVersion records source as the next version of a workflow, unless it
// is identical to the latest version (then that version is returned).
func (s *Store) SaveVersion(ctx context.Context, tenant, name, actor, action string, source []byte) (Version, error) {
	sum := sha256.Sum256(source)
	hash := hex.EncodeToString(sum[:])
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Version{}, err
	}
	defer tx.Rollback()
	var last int
	var lastHash, lastAction string
	err = tx.QueryRowContext(ctx, `SELECT version, sha256, action FROM workflow_versions
		WHERE tenant = ? AND name = ? ORDER BY version DESC LIMIT 1`, tenant, name).Scan(&last, &lastHash, &lastAction)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Version{}, fmt.Errorf("store: save version: %w", err)
	}
	if last > 0 && lastHash == hash && (lastAction == "delete") == (action == "delete") {
		return Version{Version: last, SHA256: hash, Action: lastAction, Size: len(source)}, nil
	}
	v := Version{Version: last + 1, CreatedAt: time.Now().UTC(), Actor: actor, Action: action, SHA256: hash, Size: len(source), Source: source}
	if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_versions (tenant, name, version, created_at, actor, action, sha256, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tenant, name, v.Version, ms(v.CreatedAt), actor, action, hash, source); err != nil {
		return Version{}, fmt.Errorf("store: save version: %w", err)
	}
	return v, tx.Commit()
}

// Versions lists a workflow's versions, newest first, without sources.
func (s *Store) Versions(ctx context.Context, tenant, name string) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version, created_at, actor, action, sha256, length(source)
		FROM workflow_versions WHERE tenant = ? AND name = ? ORDER BY version DESC`, tenant, name)
	if err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		var v Version
		var created int64
		if err := rows.Scan(&v.Version, &created, &v.Actor, &v.Action, &v.SHA256, &v.Size); err != nil {
			return nil, err
		}
		v.CreatedAt = fromMS(created)
		out = append(out, v)
	}
	return out, rows.Err()
}

// GetVersion returns one version with its source.
func (s *Store) GetVersion(ctx context.Context, tenant, name string, version int) (Version, error) {
	var v Version
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT version, created_at, actor, action, sha256, source
		FROM workflow_versions WHERE tenant = ? AND name = ? AND version = ?`, tenant, name, version).
		Scan(&v.Version, &created, &v.Actor, &v.Action, &v.SHA256, &v.Source)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, ErrNotFound
	}
	if err != nil {
		return Version{}, fmt.Errorf("store: version: %w", err)
	}
	v.CreatedAt = fromMS(created)
	v.Size = len(v.Source)
	return v, nil
}
