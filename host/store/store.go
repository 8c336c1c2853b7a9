// Package store keeps hwe's run history in embedded SQLite (modernc.org/sqlite,
// pure Go, WAL mode).
//
// A run is one row in `runs` plus an append-only list of events in `events`:
// every step transition and log line is inserted as it happens, and nothing is
// rewritten, so a crash loses at most the event being written. The state of a
// run's steps is the fold of its events (see Run.Steps). The same database
// also keeps earlier versions of workflow files, the audit log and webhook
// tokens.
//
// The store depends on neither the engine nor the server: callers translate
// engine events into store Events (see package recorder).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside a data folder.
const FileName = "hwe.db"

// ErrNotFound is returned when a run, version or webhook does not exist.
var ErrNotFound = errors.New("not found")

// Store is the run history database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
}

// Open opens (creating if needed) the database in the data folder dir.
// An empty dir opens a private in-memory database, for tests and for
// `hwe serve` without a data folder.
func Open(dir string) (*Store, error) {
	var dsn, path string
	if dir == "" {
		// A named shared-cache memory database, so every pooled connection
		// sees the same data; the random name keeps two stores apart.
		dsn = "file:hwe-" + NewID() + "?mode=memory&cache=shared&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data folder: %w", err)
		}
		path = filepath.Join(dir, FileName)
		// busy_timeout lets a second process (`hwe runs` while `hwe serve`
		// writes) wait for the lock instead of failing; WAL lets readers
		// proceed during a write; synchronous=NORMAL is durable against a
		// process crash, which is what the history must survive.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if dir == "" {
		// One connection keeps the memory database alive and serialises writers.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db, path: path}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file ("" for an in-memory store).
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

const schema = `
CREATE TABLE IF NOT EXISTS runs (
	id          TEXT PRIMARY KEY,
	tenant      TEXT NOT NULL,
	workflow_id TEXT NOT NULL,   -- the API name: the file stem in the tenant's folder
	workflow    TEXT NOT NULL,   -- the name the workflow declares
	file        TEXT NOT NULL,
	status      TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	trigger     TEXT NOT NULL DEFAULT '',
	actor       TEXT NOT NULL DEFAULT '',
	origin      TEXT NOT NULL DEFAULT '',
	attempt     INTEGER NOT NULL DEFAULT 1,
	input       BLOB,
	source      BLOB,
	plan        TEXT NOT NULL DEFAULT '[]',
	created_at  INTEGER NOT NULL,
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_tenant ON runs(tenant, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status);

CREATE TABLE IF NOT EXISTS events (
	run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	type   TEXT NOT NULL,
	step   TEXT NOT NULL DEFAULT '',
	data   TEXT NOT NULL,
	PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS workflow_versions (
	tenant     TEXT NOT NULL,
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	actor      TEXT NOT NULL DEFAULT '',
	action     TEXT NOT NULL DEFAULT '',
	sha256     TEXT NOT NULL,
	source     BLOB NOT NULL,
	PRIMARY KEY (tenant, name, version)
);

CREATE TABLE IF NOT EXISTS audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	tenant  TEXT NOT NULL DEFAULT '',
	actor   TEXT NOT NULL DEFAULT '',
	action  TEXT NOT NULL,
	target  TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL,
	detail  TEXT NOT NULL DEFAULT '',
	remote  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit(tenant, id DESC);

CREATE TABLE IF NOT EXISTS webhooks (
	tenant     TEXT NOT NULL,
	workflow   TEXT NOT NULL,
	id         TEXT NOT NULL UNIQUE,
	token_hash TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, workflow)
);
`

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("store: create schema: %w", err)
	}
	return nil
}

// ms converts a time to the integer milliseconds stored in the database.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
