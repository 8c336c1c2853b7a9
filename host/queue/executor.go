package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of ExecutorConfig.
const (
	DefaultLease         = 30 * time.Second
	DefaultMaxDeliveries = 3
	DefaultKeep          = 7 * 24 * time.Hour
)

// EnvLabels is the step environment variable through which a step asks for
// worker labels: env = { HWE_LABELS = "gpu=true,region=eu" }. The step then
// runs only on a worker started with (at least) those labels.
const EnvLabels = "HWE_LABELS"

// StepLabels is the default ExecutorConfig.Labels: the labels a step lists in
// its HWE_LABELS environment variable (malformed items are ignored).
func StepLabels(req *api.StepRequest) map[string]string {
	labels, _ := ParseLabels(req.Env[EnvLabels])
	return labels
}

// ExecutorConfig configures the coordinator: the engine.Executor that hands
// ready steps to workers through NATS JetStream.
type ExecutorConfig struct {
	URL    string // NATS server URLs, comma-separated (a token may be given as nats://TOKEN@host:port)
	Prefix string // names streams, buckets and subjects (default "hwe")
	Name   string // the connection's name in NATS monitoring (default "hwe-coordinator")

	// Replicas of the streams and buckets (0 = 3 when the NATS servers
	// form a cluster of three or more, else 1).
	Replicas int
	// Lease is how long a worker holds a step without a heartbeat before it
	// is handed to another worker (default 30s; workers heartbeat every
	// Lease/3).
	Lease time.Duration
	// MaxDeliveries is how many workers may be handed one step attempt
	// before it fails as lost (default 3). Each hand-over after a lost
	// worker counts as an attempt of its own.
	MaxDeliveries int
	// InlineLimit is the size above which code, inputs, outputs and host
	// call bodies go through the object store (default 256 KiB).
	InlineLimit int
	// Keep is how long run state and blobs are kept (default 7 days).
	Keep time.Duration
	// Labels returns the worker labels a step needs (default StepLabels).
	Labels func(*api.StepRequest) map[string]string

	Logger      *slog.Logger  // nil = discard
	NATSOptions []nats.Option // extra connection options (TLS, credentials)
}

func (c *ExecutorConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "hwe-coordinator"
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.InlineLimit <= 0 {
		c.InlineLimit = DefaultInlineLimit
	}
	if c.Keep <= 0 {
		c.Keep = DefaultKeep
	}
	if c.Labels == nil {
		c.Labels = StepLabels
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Executor is an engine.Executor that runs each step attempt on a worker:
// it publishes the attempt to the task stream, records it as queued in the
// run-state bucket, and waits for the worker's result. It also answers the
// host API calls the step's code makes on the worker, with the Host the
// engine gave it, so every call is checked exactly as on the server.
//
// Execute is idempotent per (run, step, attempt): if the run-state bucket
// already holds that attempt as succeeded, its output is returned without
// running it again; if it is still out on a worker (a restarted coordinator
// resuming a run), Execute waits for that execution instead of sending
// another. One coordinator per prefix.
type Executor struct {
	cfg ExecutorConfig
	n   names
	nc  *nats.Conn
	d   *deployment
	log *slog.Logger

	hostSub *nats.Subscription
	consume jetstream.ConsumeContext
	shards  []chan jetstream.Msg
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	waiters map[string]*waiter

	runsMu sync.Mutex
	runs   map[string]*runEntry

	modMu   sync.Mutex
	modRefs map[string]moduleRef // module path → blob, while the file is unchanged

	consMu       sync.Mutex
	consSeen     map[string]time.Time // task subjects a worker consumer exists for
	detached     atomic.Bool
	closed       atomic.Bool
	closeOnce    sync.Once
	stats        statCounters
	stateTimeout time.Duration
}

type moduleRef struct {
	size  int64
	mtime time.Time
	ref   string
}

// waiter is one Execute call waiting for its attempt's result.
type waiter struct {
	key  string
	ctx  context.Context // the step's context: host calls end with it
	host api.Host
	gen  atomic.Uint64 // the execution this call waits for
	rev  atomic.Uint64 // revision of its queued record, once written (0 = unknown)
	done chan *record  // the terminal record, once applied
}

// Stats counts what an Executor did, for tests and metrics.
type Stats struct {
	Published  int64 // executions sent to workers
	Attached   int64 // executions found still out on workers and waited for (after a restart)
	Reused     int64 // attempts found already succeeded and not run again
	Applied    int64 // results recorded
	Duplicates int64 // results ignored: already recorded, or for an execution no longer wanted
	Cancelled  int64 // executions abandoned by the engine (timeout, fail-fast, cancel)
}

type statCounters struct {
	published, attached, reused, applied, duplicates, cancelled atomic.Int64
}

// NewExecutor connects to NATS, creates the streams and buckets if needed,
// applies results that arrived while no coordinator was running, and starts
// taking results and host calls.
func NewExecutor(ctx context.Context, cfg ExecutorConfig) (*Executor, error) {
	cfg.setDefaults()
	n, err := newNames(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	nc, err := connect(cfg.URL, cfg.Name, cfg.NATSOptions)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
		if len(nc.Servers()) >= 3 { // the cluster's servers, as the server announced them
			cfg.Replicas = 3
		}
	}
	d, err := setupDeployment(ctx, js, n, cfg.Replicas, cfg.Keep)
	if err != nil {
		nc.Close()
		return nil, err
	}
	e := &Executor{cfg: cfg, n: n, nc: nc, d: d, log: cfg.Logger, stop: make(chan struct{}),
		waiters: map[string]*waiter{}, runs: map[string]*runEntry{}, modRefs: map[string]moduleRef{}, consSeen: map[string]time.Time{},
		stateTimeout: 10 * time.Second}
	if err := e.start(ctx); err != nil {
		e.shutdown()
		return nil, err
	}
	return e, nil
}

func (e *Executor) start(ctx context.Context) error {
	shared, _ := json.Marshal(sharedConfig{Lease: e.cfg.Lease, MaxDeliveries: e.cfg.MaxDeliveries, InlineLimit: e.cfg.InlineLimit})
	if err := retryUnavailable(ctx, func(ctx context.Context) error {
		_, err := e.d.state.Put(ctx, configKey, shared)
		return err
	}); err != nil {
		return fmt.Errorf("publishing the worker settings: %w", err)
	}

	// Host calls first, so steps still running on workers reach us as soon
	// as their runs are resumed.
	sub, err := e.nc.Subscribe(e.n.hostWildcard(), e.serveHost)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	e.hostSub = sub

	// The result consumer is made afresh: results a dead coordinator had
	// fetched but not acknowledged are delivered again at once instead of
	// after their ack wait.
	var cons jetstream.Consumer
	if err := retryUnavailable(ctx, func(ctx context.Context) error {
		if err := e.d.js.DeleteConsumer(ctx, e.n.resultStream(), e.n.resultConsumer()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		var err error
		cons, err = e.d.js.CreateOrUpdateConsumer(ctx, e.n.resultStream(), jetstream.ConsumerConfig{
			Durable:       e.n.resultConsumer(),
			FilterSubject: e.n.resultWildcard(),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       5 * time.Second,
			MaxAckPending: 8192,
		})
		return err
	}); err != nil {
		return fmt.Errorf("creating the result consumer: %w", err)
	}

	// Apply every result that is already waiting before anything is
	// published: JetStream's duplicate detection does not cover messages
	// acknowledged before a server restart, so the run state must be
	// current before Execute decides what to send again.
	for {
		batch, err := cons.FetchNoWait(512)
		if err != nil {
			return fmt.Errorf("reading waiting results: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			e.handleResult(msg)
		}
		if got == 0 {
			break
		}
	}

	e.shards = make([]chan jetstream.Msg, 8)
	for i := range e.shards {
		ch := make(chan jetstream.Msg, 256)
		e.shards[i] = ch
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for {
				select {
				case msg := <-ch:
					e.handleResult(msg)
				case <-e.stop:
					return
				}
			}
		}()
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		// Results of one attempt go to one shard, in order.
		var head struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(msg.Data(), &head)
		h := fnv.New32a()
		h.Write([]byte(head.Key))
		select {
		case e.shards[h.Sum32()%uint32(len(e.shards))] <- msg:
		case <-e.stop:
		}
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("consuming results: %w", err)
	}
	e.consume = cc
	return nil
}

// Stats returns what the executor did so far.
func (e *Executor) Stats() Stats {
	return Stats{Published: e.stats.published.Load(), Attached: e.stats.attached.Load(), Reused: e.stats.reused.Load(),
		Applied: e.stats.applied.Load(), Duplicates: e.stats.duplicates.Load(), Cancelled: e.stats.cancelled.Load()}
}

// Detach makes the executor leave steps on their workers when the engine
// cancels them from now on (they are not cancelled and stay recorded as
// queued), so a coordinator that restarts and resumes the runs picks their
// results up. Call it before a graceful shutdown that cancels runs.
func (e *Executor) Detach() { e.detached.Store(true) }

// Close stops taking results and host calls and disconnects. Steps still out
// on workers are left there (as after Detach) for the next coordinator.
func (e *Executor) Close() error {
	e.Detach()
	e.closed.Store(true)
	e.shutdown()
	return nil
}

func (e *Executor) shutdown() {
	e.closeOnce.Do(func() {
		if e.consume != nil {
			e.consume.Stop()
		}
		if e.hostSub != nil {
			_ = e.hostSub.Unsubscribe()
		}
		close(e.stop)
		e.wg.Wait()
		e.mu.Lock()
		for _, w := range e.waiters {
			select {
			case w.done <- nil: // wake the call: the executor is gone
			default:
			}
		}
		e.mu.Unlock()
		e.nc.Close()
	})
}

var (
	_ engine.Executor = (*Executor)(nil)
	_ engine.Executor = (*Dispatch)(nil)
)

// errClosed is returned by Execute calls the executor could not finish
// because it was closed.
var errClosed = errors.New("queue: the executor was closed")

// Execute runs one attempt of one step on a worker. See Executor.
func (e *Executor) Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	if e.closed.Load() {
		return nil, errClosed
	}
	if host == nil {
		host = api.NopHost{}
	}
	w := &waiter{key: stateKey(req.RunID, req.Step, req.Attempt), ctx: ctx, host: host, done: make(chan *record, 1)}
	if err := e.addWaiter(w); err != nil {
		return nil, err
	}
	defer e.removeWaiter(w)

	var (
		rec *record
		rev uint64
	)
	if e.mayHaveRecord(ctx, req.RunID, w.key) {
		var err error
		if rec, rev, err = e.getRecord(ctx, w.key); err != nil {
			return nil, e.ctxErr(ctx, err)
		}
	}
	switch {
	case rec != nil && rec.State == stateSucceeded:
		e.stats.reused.Add(1)
		return e.finish(ctx, rec)
	case rec != nil && rec.State == stateQueued:
		// Sent before this coordinator started (it restarted mid-run):
		// wait for that execution; sending it again could run it twice.
		w.gen.Store(rec.Gen)
		w.rev.Store(rev)
		e.stats.attached.Add(1)
		// Read again: a result recorded between the first read and setting
		// gen would have found no one to hand it to.
		if again, _, err := e.getRecord(ctx, w.key); err == nil && again != nil && again.Gen == rec.Gen && again.terminal() {
			return e.finish(ctx, again)
		}
	default:
		w.gen.Store(nextGen(rec))
		if err := e.publish(ctx, req, w, rec != nil, rev); err != nil {
			return nil, e.ctxErr(ctx, err)
		}
	}
	return e.wait(ctx, w)
}

// runEntry remembers whether this executor started a run afresh: then no
// record of it exists that this executor did not write, and Execute skips
// reading the run state for attempts it has not sent before.
type runEntry struct {
	once  sync.Once
	fresh bool
	mu    sync.Mutex
	keys  map[string]bool // attempts this executor has executed
	last  time.Time
}

// mayHaveRecord reports whether the run state may hold a record of key.
// The first Execute of a run creates the run's marker key; if it already
// existed the run is resumed or retried and every attempt is looked up.
func (e *Executor) mayHaveRecord(ctx context.Context, runID, key string) bool {
	e.runsMu.Lock()
	re := e.runs[runID]
	if re == nil {
		if len(e.runs) >= 10_000 {
			for id, old := range e.runs {
				old.mu.Lock()
				idle := time.Since(old.last) > time.Hour
				old.mu.Unlock()
				if idle || len(e.runs) >= 20_000 {
					delete(e.runs, id)
				}
			}
		}
		re = &runEntry{keys: map[string]bool{}, last: time.Now()}
		e.runs[runID] = re
	}
	e.runsMu.Unlock()
	re.once.Do(func() {
		err := retryUnavailable(ctx, func(ctx context.Context) error {
			_, err := e.d.state.Create(ctx, token(runID)+".run", []byte(`{}`))
			return err
		})
		re.fresh = err == nil // exists, or unknown: look every attempt up
	})
	re.mu.Lock()
	defer re.mu.Unlock()
	re.last = time.Now()
	seen := re.keys[key]
	re.keys[key] = true
	return !re.fresh || seen
}

// nextGen numbers a new execution of an attempt: larger than any earlier
// one, and never reused, so its message id is new to JetStream's duplicate
// detection (an id seen before would be dropped even if that message was
// since deleted) and results of older executions are recognisably stale.
func nextGen(prev *record) uint64 {
	g := uint64(time.Now().UnixNano())
	if prev != nil && prev.Gen >= g {
		g = prev.Gen + 1
	}
	return g
}

// ctxErr prefers the context's error, so the engine sees a timeout as one.
func (e *Executor) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (e *Executor) addWaiter(w *waiter) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, busy := e.waiters[w.key]; busy {
		return fmt.Errorf("queue: step attempt %s is already being executed", w.key)
	}
	e.waiters[w.key] = w
	return nil
}

func (e *Executor) removeWaiter(w *waiter) {
	e.mu.Lock()
	if e.waiters[w.key] == w {
		delete(e.waiters, w.key)
	}
	e.mu.Unlock()
}

func (e *Executor) waiter(key string) *waiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiters[key]
}

// publish sends one execution to the workers, then records it as queued.
// The order matters: a record saying "queued" always has a task behind it,
// so a restarted coordinator can wait for it without sending it again.
func (e *Executor) publish(ctx context.Context, req *api.StepRequest, w *waiter, exists bool, rev uint64) error {
	gen := w.gen.Load()
	t := taskMsg{V: protocolVersion, Key: w.key, Gen: gen, Request: *req, Queued: time.Now().UTC()}
	t.Request.TempDir = "" // the worker makes its own scratch folder for the run
	var err error
	if code, ref, err := e.d.blobs.spill(ctx, []byte(req.Code), e.cfg.InlineLimit); err != nil {
		return err
	} else if ref != "" {
		t.Request.Code, t.CodeRef = string(code), ref
	}
	if len(req.Inputs) > 0 {
		inputs := req.InputsJSON()
		if len(inputs) > e.cfg.InlineLimit {
			if t.InputsRef, err = e.d.blobs.put(ctx, inputs); err != nil {
				return err
			}
			t.Request.Inputs = nil
		}
	}
	if req.Language == api.LangWasm && req.Module != "" {
		if t.ModuleRef, err = e.moduleBlob(ctx, req); err != nil {
			return err
		}
	}
	data, err := json.Marshal(&t)
	if err != nil {
		return err
	}
	if len(data) > e.cfg.InlineLimit {
		if data, err = e.d.blobs.pack(ctx, data, e.cfg.InlineLimit); err != nil {
			return err
		}
	}
	lk := labelKey(e.cfg.Labels(req))
	subject := e.n.taskSubject(req.Language, lk)
	e.warnIfNoWorker(ctx, subject, req, w.host)

	var ack *jetstream.PubAck
	err = retryUnavailable(ctx, func(ctx context.Context) error {
		var err error
		ack, err = e.d.js.Publish(ctx, subject, data, jetstream.WithMsgID(execID(w.key, gen)),
			jetstream.WithExpectStream(e.n.taskStream()))
		return err
	})
	if err != nil {
		return fmt.Errorf("queue: publishing step '%s': %w", req.Step, err)
	}
	e.stats.published.Add(1)
	_ = e.nc.Publish(e.n.readySubject(req.Language, lk), nil) // wake idle workers

	queued, _ := json.Marshal(&record{State: stateQueued, Gen: gen, Seq: ack.Sequence, Updated: time.Now().UTC()})
	for try := 0; ; try++ {
		var newRev uint64
		err = retryUnavailable(ctx, func(ctx context.Context) error {
			var err error
			if exists {
				newRev, err = e.d.state.Update(ctx, w.key, queued, rev)
			} else {
				newRev, err = e.d.state.Create(ctx, w.key, queued)
			}
			return err
		})
		if err == nil {
			w.rev.Store(newRev)
			return nil
		}
		if !isConflict(err) || try >= 5 {
			break
		}
		// Someone wrote the record first: our result (a fast worker;
		// wait will get it), or a record of an earlier execution that
		// this one replaces.
		cur, curRev, gerr := e.getRecord(ctx, w.key)
		if gerr != nil {
			err = gerr
			break
		}
		if cur != nil && cur.Gen >= gen {
			return nil
		}
		exists, rev = cur != nil, curRev
	}
	dctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	_ = e.d.tasks.DeleteMsg(dctx, ack.Sequence)
	cancel()
	return fmt.Errorf("queue: recording step '%s' as queued: %w", req.Step, err)
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// moduleBlob stores the step's WASM module in the object store (once per
// content) so workers need no shared file system.
func (e *Executor) moduleBlob(ctx context.Context, req *api.StepRequest) (string, error) {
	path := resolveModule(req)
	if path == "" {
		return "", nil // not found here: the worker's runner reports it
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil
	}
	e.modMu.Lock()
	m, ok := e.modRefs[path]
	e.modMu.Unlock()
	if ok && m.size == fi.Size() && m.mtime.Equal(fi.ModTime()) {
		return m.ref, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	ref, err := e.d.blobs.put(ctx, data)
	if err != nil {
		return "", err
	}
	e.modMu.Lock()
	if len(e.modRefs) > 4096 {
		clear(e.modRefs)
	}
	e.modRefs[path] = moduleRef{size: fi.Size(), mtime: fi.ModTime(), ref: ref}
	e.modMu.Unlock()
	return ref, nil
}

// resolveModule finds a module file the way the WASM runner does: an
// absolute path as is, else against the workflow's folder, then the working
// directory. "" if there is none.
func resolveModule(req *api.StepRequest) string {
	p := req.Module
	var candidates []string
	if filepath.IsAbs(p) {
		candidates = []string{p}
	} else {
		if req.WorkflowDir != "" {
			candidates = append(candidates, filepath.Join(req.WorkflowDir, p))
		}
		if wd, err := os.Getwd(); err == nil {
			candidates = append(candidates, filepath.Join(wd, p))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// warnIfNoWorker writes to the step's log when no worker has ever listened
// for its language and labels: the step would otherwise wait silently.
func (e *Executor) warnIfNoWorker(ctx context.Context, subject string, req *api.StepRequest, host api.Host) {
	e.consMu.Lock()
	seen, ok := e.consSeen[subject]
	e.consMu.Unlock()
	if ok && time.Since(seen) < time.Minute {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := e.d.tasks.Consumer(lctx, consumerName(subject)); err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			what := req.Language + " steps"
			if l := e.cfg.Labels(req); len(l) > 0 {
				what += " with labels " + formatLabels(l)
			}
			host.Log("log", "hwe: no worker has taken "+what+" yet; the step waits for one")
		}
		return
	}
	e.consMu.Lock()
	e.consSeen[subject] = time.Now()
	e.consMu.Unlock()
}

func formatLabels(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// wait blocks until the execution's result is recorded or ctx ends.
func (e *Executor) wait(ctx context.Context, w *waiter) (json.RawMessage, error) {
	// A result is normally handed over by handleResult; the record is also
	// read now and then in case that hand-over was missed.
	check := time.NewTicker(max(e.cfg.Lease, 2*time.Second))
	defer check.Stop()
	for {
		// The result may already be recorded (a fast worker beat the
		// queued record).
		select {
		case rec := <-w.done:
			if rec == nil {
				return nil, errClosed
			}
			return e.finish(ctx, rec)
		case <-ctx.Done():
			e.abandon(w)
			return nil, ctx.Err()
		case <-check.C:
			rec, _, err := e.getRecord(ctx, w.key)
			if err == nil && rec != nil && rec.Gen == w.gen.Load() && rec.terminal() {
				return e.finish(ctx, rec)
			}
		}
	}
}

// finish turns a terminal record into Execute's return values.
func (e *Executor) finish(ctx context.Context, rec *record) (json.RawMessage, error) {
	switch rec.State {
	case stateSucceeded:
		if rec.OutputRef != "" {
			out, err := e.d.blobs.get(ctx, rec.OutputRef)
			if err != nil {
				return nil, fmt.Errorf("queue: reading the step's output: %w", err)
			}
			return out, nil
		}
		return rec.Output, nil
	case stateFailed:
		if rec.Error == nil {
			return nil, errors.New("step failed on a worker")
		}
		return nil, rec.Error.decode()
	}
	return nil, errors.New("cancelled")
}

// abandon stops an execution the engine no longer waits for: its task is
// deleted if no worker has it yet, workers running it are told to stop, and
// its record says cancelled so a late result is ignored.
func (e *Executor) abandon(w *waiter) {
	if e.detached.Load() {
		return // left for the next coordinator
	}
	e.stats.cancelled.Add(1)
	gen := w.gen.Load()
	ctx, cancel := context.WithTimeout(context.Background(), e.stateTimeout)
	defer cancel()
	_ = e.nc.Publish(e.n.cancelSubject(w.key, gen), nil)
	for range 5 {
		var (
			rec *record
			rev uint64
			err error
		)
		rec, rev, err = e.getRecord(ctx, w.key)
		if err != nil || rec == nil || rec.Gen != gen || rec.terminal() {
			return
		}
		if rec.Seq != 0 {
			_ = retryUnavailable(ctx, func(ctx context.Context) error {
				err := e.d.tasks.DeleteMsg(ctx, rec.Seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					return nil // a worker took it already
				}
				return err
			})
		}
		rec.State, rec.Updated = stateCancelled, time.Now().UTC()
		data, _ := json.Marshal(rec)
		err = retryUnavailable(ctx, func(ctx context.Context) error {
			_, err := e.d.state.Update(ctx, w.key, data, rev)
			return err
		})
		if err == nil || !isConflict(err) {
			return
		}
	}
}

// getRecord reads an attempt's record; nil if there is none.
func (e *Executor) getRecord(ctx context.Context, key string) (*record, uint64, error) {
	var entry jetstream.KeyValueEntry
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		var err error
		entry, err = e.d.state.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			entry, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("queue: reading run state: %w", err)
	}
	if entry == nil {
		return nil, 0, nil
	}
	var rec record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return nil, 0, fmt.Errorf("queue: run state of %s: %w", key, err)
	}
	return &rec, entry.Revision(), nil
}

// handleResult records one result message and acknowledges it.
func (e *Executor) handleResult(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, err := e.d.blobs.unpack(ctx, msg.Data())
	var res resultMsg
	if err == nil {
		err = json.Unmarshal(data, &res)
	}
	if err != nil || res.Key == "" {
		e.log.Error("queue: dropping an unreadable result", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if err := e.applyResult(ctx, &res); err != nil {
		e.log.Warn("queue: recording a result failed; it will be retried", "key", res.Key, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

// applyResult records a result unless its execution is already finished or
// superseded (idempotent completion), then hands it to the waiting Execute.
func (e *Executor) applyResult(ctx context.Context, res *resultMsg) error {
	w := e.waiter(res.Key)
	next := &record{Gen: res.Gen, Worker: res.Worker, Delivery: res.Delivery, Updated: time.Now().UTC()}
	if res.Error != nil {
		next.State, next.Error = stateFailed, res.Error
	} else {
		next.State, next.Output, next.OutputRef = stateSucceeded, res.Output, res.OutputRef
	}
	data, err := json.Marshal(next)
	if err != nil {
		return err
	}
	// The waiting Execute gets the result at once; the record is written
	// before the result message is acknowledged, so a coordinator that
	// dies in between gets the message again.
	notify := func(w *waiter) {
		if w != nil && w.gen.Load() == res.Gen {
			select {
			case w.done <- next:
			default:
			}
		}
	}
	notify(w)
	for try := 0; ; try++ {
		var (
			rec *record
			rev uint64
		)
		if try == 0 && w != nil && w.gen.Load() == res.Gen && w.rev.Load() != 0 {
			rev = w.rev.Load() // the queued record this call wrote: skip reading it
			rec = &record{State: stateQueued, Gen: res.Gen}
		} else if rec, rev, err = e.getRecord(ctx, res.Key); err != nil {
			return err
		}
		if rec != nil && (rec.Gen > res.Gen || rec.Gen == res.Gen && rec.terminal()) {
			e.stats.duplicates.Add(1)
			return nil
		}
		err = retryUnavailable(ctx, func(ctx context.Context) error {
			var err error
			if rec == nil {
				_, err = e.d.state.Create(ctx, res.Key, data)
			} else {
				_, err = e.d.state.Update(ctx, res.Key, data, rev)
			}
			return err
		})
		if err == nil {
			break
		}
		if !isConflict(err) || try >= 20 {
			return err
		}
	}
	e.stats.applied.Add(1)
	notify(e.waiter(res.Key)) // perhaps a new Execute that read the record before this write
	return nil
}

// serveHost answers one host API call from a step running on a worker, with
// the Host the engine gave that step's Execute call.
func (e *Executor) serveHost(m *nats.Msg) {
	key, gen, ok := e.n.parseHostSubject(m.Subject)
	if !ok {
		return
	}
	data := m.Data
	if isBlobRef(data) {
		// A large call, fetched here rather than in a goroutine: log lines
		// must stay in order (blobs are rare: values over InlineLimit).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		full, err := e.d.blobs.unpack(ctx, data)
		cancel()
		if err != nil {
			e.reply(m, &hostReply{Error: encodeError(fmt.Errorf("reading a host call: %w", err))})
			return
		}
		data = full
	}
	var call hostCall
	if err := json.Unmarshal(data, &call); err != nil {
		return
	}
	e.dispatchHost(m, key, gen, &call)
}

func (e *Executor) dispatchHost(m *nats.Msg, key string, gen uint64, call *hostCall) {
	w := e.waiter(key)
	if w == nil || w.gen.Load() != gen {
		if m.Reply != "" {
			e.reply(m, &hostReply{Inactive: true})
		}
		return
	}
	switch call.Op {
	// Log lines, progress and sync are handled in arrival order on this
	// subscription's goroutine, so a sync reply means every earlier line
	// of the step is in the run's events.
	case "log":
		w.host.Log(call.Stream, call.Line)
	case "progress":
		w.host.Progress(call.Fraction, call.Message)
	case "started":
		if call.Delivery > 1 {
			w.host.Log("log", fmt.Sprintf("hwe: worker %s took the step over (delivery %d of at most %d): the worker that had it stopped answering",
				call.Worker, call.Delivery, e.cfg.MaxDeliveries))
		}
	case "sync":
		e.reply(m, &hostReply{})
	default:
		go e.reply(m, e.answer(w, call))
	}
}

// answer performs a KV, secret or HTTP call through the step's Host.
func (e *Executor) answer(w *waiter, call *hostCall) *hostReply {
	ctx := w.ctx
	switch call.Op {
	case "kv_get":
		v, found, err := w.host.KVGet(ctx, call.Key)
		return &hostReply{Value: v, Found: found, Error: encodeError(err)}
	case "kv_put":
		return &hostReply{Error: encodeError(w.host.KVPut(ctx, call.Key, call.Value))}
	case "secret":
		s, err := w.host.Secret(ctx, call.Name)
		return &hostReply{Secret: s, Error: encodeError(err)}
	case "http":
		if call.HTTP == nil {
			return &hostReply{Error: encodeError(errors.New("empty HTTP request"))}
		}
		resp, err := w.host.HTTPFetch(ctx, *call.HTTP)
		return &hostReply{HTTP: resp, Error: encodeError(err)}
	}
	return &hostReply{Error: encodeError(fmt.Errorf("unknown host call %q", call.Op))}
}

func (e *Executor) reply(m *nats.Msg, r *hostReply) {
	if m.Reply == "" {
		return
	}
	data, err := json.Marshal(r)
	if err != nil {
		data, _ = json.Marshal(&hostReply{Error: encodeError(err)})
	}
	if len(data) > e.cfg.InlineLimit {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		packed, err := e.d.blobs.pack(ctx, data, e.cfg.InlineLimit)
		cancel()
		if err != nil {
			packed, _ = json.Marshal(&hostReply{Error: encodeError(err)})
		}
		data = packed
	}
	_ = m.Respond(data)
}
