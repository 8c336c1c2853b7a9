package capability

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Scope is the part of the KV store one step sees: its tenant and workflow.
// Steps of other workflows or tenants never read or overwrite each other's keys.
type Scope struct {
	Tenant   string
	Workflow string
}

// KVStore holds the keys written through the host API. Implementations must
// be safe for concurrent use and must keep scopes apart.
type KVStore interface {
	Get(ctx context.Context, scope Scope, key string) (value []byte, found bool, err error)
	Put(ctx context.Context, scope Scope, key string, value []byte) error
}

// MemoryKV is a KVStore held in memory, for `hwe run` and tests.
type MemoryKV struct {
	mu   sync.RWMutex
	data map[Scope]map[string][]byte
}

// NewMemoryKV returns an empty in-memory store.
func NewMemoryKV() *MemoryKV { return &MemoryKV{data: map[Scope]map[string][]byte{}} }

func (m *MemoryKV) Get(_ context.Context, scope Scope, key string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[scope][key]
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

func (m *MemoryKV) Put(_ context.Context, scope Scope, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data[scope] == nil {
		m.data[scope] = map[string][]byte{}
	}
	m.data[scope][key] = append([]byte(nil), value...)
	return nil
}

// SQLiteKV is a KVStore in a SQLite table keyed by tenant, workflow and key.
type SQLiteKV struct {
	db    *sql.DB
	owned bool
}

const kvSchema = `CREATE TABLE IF NOT EXISTS hwe_kv (
	tenant     TEXT NOT NULL,
	workflow   TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      BLOB NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, workflow, key)
)`

// OpenSQLiteKV opens (creating if needed) a SQLite database file holding the
// KV table. Close releases it.
func OpenSQLiteKV(path string) (*SQLiteKV, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	kv, err := NewSQLiteKV(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	kv.owned = true
	return kv, nil
}

// NewSQLiteKV uses an open database (for example the run store's) and
// creates the KV table in it if it is missing. Close does not close db.
func NewSQLiteKV(db *sql.DB) (*SQLiteKV, error) {
	if _, err := db.Exec(kvSchema); err != nil {
		return nil, fmt.Errorf("kv: create table: %w", err)
	}
	return &SQLiteKV{db: db}, nil
}

func (s *SQLiteKV) Get(ctx context.Context, scope Scope, key string) ([]byte, bool, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx,
		`SELECT value FROM hwe_kv WHERE tenant = ? AND workflow = ? AND key = ?`,
		scope.Tenant, scope.Workflow, key).Scan(&v)
	if err == sql.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv: get: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

func (s *SQLiteKV) Put(ctx context.Context, scope Scope, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO hwe_kv (tenant, workflow, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (tenant, workflow, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		scope.Tenant, scope.Workflow, key, value, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("kv: put: %w", err)
	}
	return nil
}

// Close closes the database if OpenSQLiteKV opened it.
func (s *SQLiteKV) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}
