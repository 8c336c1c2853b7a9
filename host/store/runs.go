package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Run and step statuses. The engine's (pending, running, succeeded, failed,
// skipped, cancelled) plus two only a stored run can have: queued (waiting
// for a slot) and interrupted (the process recording it stopped or died
// mid-run; `hwe runs resume` finishes it).
const (
	StatusQueued      = "queued"
	StatusPending     = "pending"
	StatusRunning     = "running"
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusSkipped     = "skipped"
	StatusCancelled   = "cancelled"
	StatusInterrupted = "interrupted"
)

// Finished reports whether a run with this status has ended (for now: an
// interrupted, failed or cancelled run may be resumed).
func Finished(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusInterrupted:
		return true
	}
	return false
}

// Event types the store understands besides the engine's (see the recorder):
// run_resumed marks the start of a new attempt of the run; steps that had
// not succeeded go back to pending. run_interrupted records that the process
// running it stopped.
const (
	EventRunStarted     = "run_started"
	EventStepStarted    = "step_started"
	EventStepLog        = "log"
	EventStepProgress   = "progress"
	EventStepRetry      = "step_retry"
	EventStepFinished   = "step_finished"
	EventStepOutput     = "output"
	EventRunFinished    = "run_finished"
	EventRunResumed     = "run_resumed"
	EventRunInterrupted = "run_interrupted"
)

// Event is one stored event of a run. Its JSON form is what the API's
// server-sent events carry.
type Event struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	RunID      string          `json:"run_id"`
	Workflow   string          `json:"workflow,omitempty"`
	Step       string          `json:"step,omitempty"`
	Time       time.Time       `json:"time"`
	Attempt    int             `json:"attempt,omitempty"`
	Status     string          `json:"status,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Stream     string          `json:"stream,omitempty"`
	Line       string          `json:"line,omitempty"`
	Progress   float64         `json:"progress,omitempty"`
	Message    string          `json:"message,omitempty"`
	DurationMS int64           `json:"duration_ms,omitempty"`
}

// PlannedStep is a step as the workflow declared it when the run was created.
type PlannedStep struct {
	Name      string   `json:"name"`
	Language  string   `json:"language"`
	DependsOn []string `json:"depends_on,omitempty"`
}

// Run is a run as stored, in the `hwe run --json` shape plus its id and
// bookkeeping fields.
type Run struct {
	ID         string          `json:"id"`
	Workflow   string          `json:"workflow"`
	File       string          `json:"file"`
	Status     string          `json:"status"`
	DurationMS int64           `json:"duration_ms"`
	Error      string          `json:"error,omitempty"`
	Steps      []Step          `json:"steps"`
	WorkflowID string          `json:"workflow_id"`
	Tenant     string          `json:"tenant"`
	Trigger    string          `json:"trigger,omitempty"`
	Actor      string          `json:"actor,omitempty"`
	Origin     string          `json:"-"`
	Attempt    int             `json:"attempt"`
	Input      json.RawMessage `json:"input,omitempty"`
	Source     []byte          `json:"-"`
	Plan       []PlannedStep   `json:"-"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
}

// Step is the state of one step of a run, folded from its events.
type Step struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error,omitempty"`
	Attempts   int             `json:"attempts"`
	DurationMS int64           `json:"duration_ms"`
	DependsOn  []string        `json:"depends_on,omitempty"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
}

// NewRun describes a run to create.
type NewRun struct {
	ID         string // "" = NewID()
	Tenant     string
	WorkflowID string
	Workflow   string
	File       string
	Trigger    string // "api", "schedule", "webhook", "cli", "legacy", ...
	Actor      string // who started it (token name)
	Origin     string // which kind of process owns it ("serve", "cli")
	Input      json.RawMessage
	Source     []byte // the workflow source the run uses, so resume runs the same code
	Plan       []PlannedStep
}

// CreateRun inserts a queued run and returns its id.
func (s *Store) CreateRun(ctx context.Context, nr NewRun) (string, error) {
	if nr.ID == "" {
		nr.ID = NewID()
	}
	plan, err := json.Marshal(nr.Plan)
	if err != nil {
		return "", err
	}
	if nr.Plan == nil {
		plan = []byte("[]")
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO runs
		(id, tenant, workflow_id, workflow, file, status, trigger, actor, origin, attempt, input, source, plan, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`,
		nr.ID, nr.Tenant, nr.WorkflowID, nr.Workflow, nr.File, StatusQueued, nr.Trigger, nr.Actor, nr.Origin,
		nullBytes(nr.Input), nr.Source, string(plan), ms(time.Now()))
	if err != nil {
		return "", fmt.Errorf("store: create run: %w", err)
	}
	return nr.ID, nil
}

// StartRun marks a run running from t.
func (s *Store) StartRun(ctx context.Context, id string, t time.Time) error {
	return s.update(ctx, `UPDATE runs SET status = ?, started_at = ? WHERE id = ?`, StatusRunning, ms(t), id)
}

// FinishRun records how a run ended.
func (s *Store) FinishRun(ctx context.Context, id, status, errMsg string, t time.Time, durationMS int64) error {
	return s.update(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ?, duration_ms = ? WHERE id = ?`,
		status, errMsg, ms(t), durationMS, id)
}

// BeginAttempt makes a finished run queued again for another attempt
// (resume or retry) and appends a run_resumed event. It returns the new
// attempt number. Only runs in a finished state that did not succeed can be
// resumed.
func (s *Store) BeginAttempt(ctx context.Context, id, actor string) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var status string
	var attempt int
	err = tx.QueryRowContext(ctx, `SELECT status, attempt FROM runs WHERE id = ?`, id).Scan(&status, &attempt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if !Finished(status) || status == StatusSucceeded {
		return 0, &StateError{ID: id, Status: status}
	}
	attempt++
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = '', finished_at = 0, attempt = ? WHERE id = ?`,
		StatusQueued, attempt, id); err != nil {
		return 0, err
	}
	ev := &Event{Type: EventRunResumed, RunID: id, Time: time.Now().UTC(), Attempt: attempt, Message: actor}
	if _, err := appendEvent(ctx, tx, ev); err != nil {
		return 0, err
	}
	return attempt, tx.Commit()
}

// StateError says a run is in a state that does not allow the operation.
type StateError struct {
	ID     string
	Status string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("run %s is %s", e.ID, e.Status)
}

// AppendEvent stores ev as the next event of its run and sets ev.Seq.
func (s *Store) AppendEvent(ctx context.Context, ev *Event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: append event: %w", err)
	}
	defer tx.Rollback()
	seq, err := appendEvent(ctx, tx, ev)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: append event: %w", err)
	}
	ev.Seq = seq
	return nil
}

func appendEvent(ctx context.Context, tx *sql.Tx, ev *Event) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?`, ev.RunID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	ev.Seq = 0 // the data column never holds the sequence number
	data, err := marshalEvent(ev)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (run_id, seq, type, step, data) VALUES (?, ?, ?, ?, ?)`,
		ev.RunID, seq, ev.Type, ev.Step, string(data)); err != nil {
		return 0, fmt.Errorf("store: append event: %w", err)
	}
	ev.Seq = seq
	return seq, nil
}

// EventFilter selects events of one run.
type EventFilter struct {
	After int64    // only events with Seq > After
	Limit int      // 0 = all
	Types []string // nil = all types
	Step  string   // "" = all steps
}

// Events returns a run's events in order.
func (s *Store) Events(ctx context.Context, runID string, f EventFilter) ([]Event, error) {
	q := `SELECT seq, data FROM events WHERE run_id = ? AND seq > ?`
	args := []any{runID, f.After}
	if len(f.Types) > 0 {
		q += ` AND type IN (?` + strings.Repeat(`, ?`, len(f.Types)-1) + `)`
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.Step != "" {
		q += ` AND step = ?`
		args = append(args, f.Step)
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var seq int64
		var data string
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, err
		}
		var ev Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("store: event %s/%d: %w", runID, seq, err)
		}
		ev.Seq = seq
		out = append(out, ev)
	}
	return out, rows.Err()
}

// transitionTypes are the events that change a step's state.
var transitionTypes = []string{EventStepStarted, EventStepRetry, EventStepFinished, EventStepOutput, EventRunResumed}

const runColumns = `id, tenant, workflow_id, workflow, file, status, error, trigger, actor, origin, attempt,
	input, plan, created_at, started_at, finished_at, duration_ms`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var r Run
	var input []byte
	var plan string
	var created, started, finished int64
	if err := sc.Scan(&r.ID, &r.Tenant, &r.WorkflowID, &r.Workflow, &r.File, &r.Status, &r.Error, &r.Trigger,
		&r.Actor, &r.Origin, &r.Attempt, &input, &plan, &created, &started, &finished, &r.DurationMS); err != nil {
		return nil, err
	}
	if len(input) > 0 {
		r.Input = json.RawMessage(input)
	}
	if err := json.Unmarshal([]byte(plan), &r.Plan); err != nil {
		return nil, fmt.Errorf("store: run %s plan: %w", r.ID, err)
	}
	r.CreatedAt, r.StartedAt, r.FinishedAt = fromMS(created), fromMS(started), fromMS(finished)
	return &r, nil
}

// GetRun returns a run with its steps' current state and its source.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+runColumns+`, source FROM runs WHERE id = ?`, id)
	var r *Run
	var source []byte
	r, err := scanRun(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &source)...) }))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: run %s: %w", id, err)
	}
	r.Source = source
	events, err := s.Events(ctx, id, EventFilter{Types: transitionTypes})
	if err != nil {
		return nil, err
	}
	r.Steps = FoldSteps(r.Plan, events)
	return r, nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// FoldSteps computes each step's state from the plan and the run's events
// in order. Steps appear in plan order; a step only seen in events is added
// at the end.
func FoldSteps(plan []PlannedStep, events []Event) []Step {
	steps := make([]Step, 0, len(plan))
	index := make(map[string]int, len(plan))
	for _, p := range plan {
		index[p.Name] = len(steps)
		steps = append(steps, Step{Name: p.Name, Language: p.Language, Status: StatusPending, DependsOn: p.DependsOn})
	}
	for _, ev := range events {
		if ev.Type == EventRunResumed {
			for i := range steps {
				if steps[i].Status != StatusSucceeded {
					steps[i] = Step{Name: steps[i].Name, Language: steps[i].Language, Status: StatusPending, DependsOn: steps[i].DependsOn}
				}
			}
			continue
		}
		if ev.Step == "" {
			continue
		}
		i, ok := index[ev.Step]
		if !ok {
			index[ev.Step] = len(steps)
			i = len(steps)
			steps = append(steps, Step{Name: ev.Step, Status: StatusPending})
		}
		st := &steps[i]
		switch ev.Type {
		case EventStepStarted:
			st.Status = StatusRunning
			st.Error = ""
			st.StartedAt = ev.Time
			st.Attempts = max(st.Attempts, ev.Attempt, 1)
		case EventStepRetry:
			st.Status = StatusRunning
			st.Error = ev.Error
			st.Attempts = max(st.Attempts, ev.Attempt)
		case EventStepFinished:
			if ev.Attempt == 0 && ev.Status == StatusSucceeded && st.Status == StatusSucceeded {
				continue // a resumed attempt reusing this step's stored output
			}
			st.Status = ev.Status
			st.Error = ev.Error
			st.DurationMS = ev.DurationMS
			st.FinishedAt = ev.Time
			st.Attempts = max(st.Attempts, ev.Attempt)
			if len(ev.Output) > 0 {
				st.Output = ev.Output
			}
		case EventStepOutput:
			st.Output = ev.Output
		}
	}
	return steps
}

// Outputs returns the outputs of the steps of a run that succeeded: what a
// resumed attempt can reuse instead of running them again.
func (r *Run) Outputs() map[string]json.RawMessage {
	out := make(map[string]json.RawMessage)
	for _, st := range r.Steps {
		if st.Status == StatusSucceeded {
			o := st.Output
			if o == nil {
				o = json.RawMessage("null")
			}
			out[st.Name] = o
		}
	}
	return out
}

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	Tenant   string // "" = every tenant
	Workflow string // matches the workflow id or the declared name
	Status   string
	Limit    int // 0 = 50
	Offset   int
}

// ListRuns returns runs newest first (without steps or source) and how many
// match in total.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, int, error) {
	where := []string{"1=1"}
	var args []any
	if f.Tenant != "" {
		where = append(where, "tenant = ?")
		args = append(args, f.Tenant)
	}
	if f.Workflow != "" {
		where = append(where, "(workflow_id = ? OR workflow = ?)")
		args = append(args, f.Workflow, f.Workflow)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: list runs: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE `+cond+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list runs: %w", err)
	}
	defer rows.Close()
	runs := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, err
		}
		runs = append(runs, *r)
	}
	return runs, total, rows.Err()
}

// UnfinishedRuns returns the ids of runs of the given origin that are
// queued or running: after a crash, the runs that were in flight.
func (s *Store) UnfinishedRuns(ctx context.Context, origin string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM runs WHERE origin = ? AND status IN (?, ?) ORDER BY id`,
		origin, StatusQueued, StatusRunning)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Interrupt marks an unfinished run interrupted, with the reason as its
// error, and appends a run_interrupted event. Finished runs are left alone.
func (s *Store) Interrupt(ctx context.Context, id, reason string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN (?, ?)`,
		StatusInterrupted, reason, ms(time.Now()), id, StatusQueued, StatusRunning)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	ev := &Event{Type: EventRunInterrupted, RunID: id, Time: time.Now().UTC(), Status: StatusInterrupted, Error: reason}
	if _, err := appendEvent(ctx, tx, ev); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) update(ctx context.Context, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// marshalEvent encodes an event without HTML escaping, so outputs and log
// lines are stored byte for byte ("<" stays "<", not \u003c).
func marshalEvent(ev *Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
