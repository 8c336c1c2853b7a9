package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Runners is what a worker runs steps with: the same runner registry
// `hwe run` uses (*registry.Registry satisfies it).
type Runners interface {
	Execute(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error)
	Infos() []api.RunnerInfo
}

// WorkerConfig configures a worker.
type WorkerConfig struct {
	URL    string // NATS server URLs, comma-separated
	Prefix string // the coordinator's prefix (default "hwe")
	Name   string // shown in step logs and NATS monitoring (default host-pid)

	Slots   int     // steps run at once (default: CPUs)
	Runners Runners // required
	// Languages this worker takes: canonical languages or runner names
	// ("node" means javascript). nil = every language Runners serves.
	Languages []string
	// Labels this worker has; a step needing labels runs only on a worker
	// that has all of them (at most 6 labels).
	Labels map[string]string

	// WorkDir holds downloaded WASM modules and each run's scratch folder
	// ("" = a new folder in the system temp folder, removed at exit).
	WorkDir string
	// Grace is how long a stopping worker lets running steps finish before
	// it cancels them and hands them back to the queue (default 10s).
	Grace time.Duration

	Logger      *slog.Logger  // nil = discard
	NATSOptions []nats.Option // extra connection options (TLS, credentials)
	// Ready is called once the worker listens for steps.
	Ready func()
}

type worker struct {
	cfg    WorkerConfig
	n      names
	nc     *nats.Conn
	d      *deployment
	shared sharedConfig
	log    *slog.Logger

	sources []*source
	slots   chan struct{} // one token per running step
	bell    chan struct{} // a task was queued on one of our subjects

	stepBase   context.Context // parent of every step: cancelled when the grace period ends
	stopSteps  context.CancelFunc
	resultBase context.Context // result publishing: outlives the steps
	stopResult context.CancelFunc
	running    sync.WaitGroup

	mu        sync.Mutex
	executing map[string]context.CancelFunc // exec id → cancel
	cancelled map[string]time.Time          // exec ids the coordinator gave up on
	runDirs   map[string]*runDir
}

type runDir struct {
	path  string
	users int
	timer *time.Timer
}

// RunWorker takes steps from the queue and runs them until ctx is done, then
// lets running steps finish (up to Grace) and returns.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Runners == nil {
		return errors.New("worker: no runners")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.NumCPU()
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if len(cfg.Labels) > maxWorkerLabels {
		return fmt.Errorf("worker: at most %d labels", maxWorkerLabels)
	}
	langs, err := workerLanguages(cfg.Runners, cfg.Languages)
	if err != nil {
		return err
	}
	n, err := newNames(cfg.Prefix)
	if err != nil {
		return err
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hwe-worker-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	} else if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return err
	}

	nc, err := connect(cfg.URL, "hwe-worker "+cfg.Name, cfg.NATSOptions)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	w := &worker{cfg: cfg, n: n, nc: nc, log: cfg.Logger.With("worker", cfg.Name),
		slots: make(chan struct{}, cfg.Slots), bell: make(chan struct{}, 1),
		executing: map[string]context.CancelFunc{}, cancelled: map[string]time.Time{}, runDirs: map[string]*runDir{}}
	w.d, err = bindDeployment(ctx, js, n, func(err error) {
		w.log.Info("waiting for the coordinator to create the queue", "err", err)
	})
	if err != nil {
		return err
	}
	if w.shared, err = w.readShared(ctx); err != nil {
		return err
	}
	if err := w.listen(ctx, langs); err != nil {
		return err
	}
	w.stepBase, w.stopSteps = context.WithCancel(context.Background())
	w.resultBase, w.stopResult = context.WithCancel(context.Background())
	defer w.stopResult()
	defer w.stopSteps()

	w.log.Info("worker ready", "languages", langs, "labels", formatLabels(cfg.Labels), "slots", cfg.Slots)
	if cfg.Ready != nil {
		cfg.Ready()
	}
	w.fetchLoop(ctx)

	// Stopping: no new steps; running ones get the grace period, then are
	// cancelled and handed back.
	done := make(chan struct{})
	go func() { w.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.Grace):
		w.log.Warn("grace period over: handing running steps back to the queue")
		w.stopSteps()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
	w.stopResult()
	_ = nc.Drain()
	return nil
}

// workerLanguages resolves --runners (languages or runner names) against
// what the registry serves.
func workerLanguages(r Runners, want []string) ([]string, error) {
	byName := map[string][]string{}
	served := map[string]bool{}
	for _, info := range r.Infos() {
		byName[info.Name] = append(byName[info.Name], info.Languages...)
		for _, l := range info.Languages {
			served[l] = true
		}
	}
	var out []string
	if len(want) == 0 {
		for l := range served {
			out = append(out, l)
		}
	}
	for _, name := range want {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case served[name]:
			out = append(out, name)
		case len(byName[name]) > 0:
			out = append(out, byName[name]...)
		default:
			return nil, fmt.Errorf("worker: no runner serves %q here", name)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("worker: no languages to serve")
	}
	return out, nil
}

// readShared reads the lease and delivery limit the coordinator published.
func (w *worker) readShared(ctx context.Context) (sharedConfig, error) {
	for {
		entry, err := w.d.state.Get(ctx, configKey)
		if err == nil {
			var sc sharedConfig
			if err := json.Unmarshal(entry.Value(), &sc); err != nil {
				return sc, fmt.Errorf("worker: the coordinator's settings: %w", err)
			}
			if sc.Lease <= 0 {
				sc.Lease = DefaultLease
			}
			if sc.MaxDeliveries <= 0 {
				sc.MaxDeliveries = DefaultMaxDeliveries
			}
			if sc.InlineLimit <= 0 {
				sc.InlineLimit = DefaultInlineLimit
			}
			return sc, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) && !transient(err) {
			return sharedConfig{}, err
		}
		select {
		case <-ctx.Done():
			return sharedConfig{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// listen binds the consumers of every task subject this worker serves (each
// language × each subset of its labels) and subscribes to their doorbells
// and to cancellations.
func (w *worker) listen(ctx context.Context, langs []string) error {
	for _, lang := range langs {
		for _, labels := range labelSubsets(w.cfg.Labels) {
			lk := labelKey(labels)
			subject := w.n.taskSubject(lang, lk)
			desc := "hwe workers: " + lang + " steps"
			if len(labels) > 0 {
				desc += " needing " + formatLabels(labels)
			}
			var cons jetstream.Consumer
			err := retryUnavailable(ctx, func(ctx context.Context) error {
				var err error
				cons, err = w.d.js.CreateOrUpdateConsumer(ctx, w.n.taskStream(), jetstream.ConsumerConfig{
					Durable:           consumerName(subject),
					Description:       desc,
					FilterSubject:     subject,
					AckPolicy:         jetstream.AckExplicitPolicy,
					AckWait:           w.shared.Lease,
					MaxDeliver:        -1, // the delivery limit is applied by the worker, which reports it
					MaxAckPending:     -1,
					InactiveThreshold: 30 * 24 * time.Hour,
				})
				return err
			})
			if err != nil {
				return fmt.Errorf("worker: consumer for %s: %w", subject, err)
			}
			src := &source{cons: cons}
			w.sources = append(w.sources, src)
			if _, err := w.nc.Subscribe(w.n.readySubject(lang, lk), func(*nats.Msg) {
				src.ready.Store(true)
				w.ring()
			}); err != nil {
				return err
			}
		}
	}
	_, err := w.nc.Subscribe(w.n.cancelWildcard(), w.onCancel)
	return err
}

func (w *worker) ring() {
	select {
	case w.bell <- struct{}{}:
	default:
	}
}

// source is one consumer a worker takes tasks from.
type source struct {
	cons  jetstream.Consumer
	ready atomic.Bool // a doorbell rang (or the last fetch was full): it may hold tasks
}

// idlePoll is how often a worker looks at every one of its consumers, not
// only those whose doorbell rang (a task handed back after a lost worker
// rings none).
const idlePoll = 500 * time.Millisecond

// fetchLoop takes as many tasks as there are free slots from the consumers
// that may hold some, and sleeps until a doorbell when none do.
func (w *worker) fetchLoop(ctx context.Context) {
	maxBatch := min(cap(w.slots), 64)
	next := 0
	var lastSweep time.Time
	for {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		want := 1
	grab:
		for want < maxBatch {
			select {
			case w.slots <- struct{}{}:
				want++
			default:
				break grab
			}
		}
		sweep := time.Since(lastSweep) >= idlePoll
		if sweep {
			lastSweep = time.Now()
		}
		got := 0
		for i := 0; i < len(w.sources) && got < want; i++ {
			src := w.sources[(next+i)%len(w.sources)]
			if !sweep && !src.ready.Load() {
				continue
			}
			src.ready.Store(false)
			asked := want - got
			batch, err := src.cons.FetchNoWait(asked)
			if err != nil {
				src.ready.Store(true)
				if ctx.Err() == nil {
					w.log.Debug("fetch failed", "err", err)
				}
				continue
			}
			n := 0
			for msg := range batch.Messages() {
				n++
				w.running.Add(1)
				go w.run(msg)
			}
			if n == asked {
				src.ready.Store(true) // there may be more
			}
			got += n
		}
		next++
		for range want - got {
			<-w.slots
		}
		if got == 0 {
			select {
			case <-w.bell:
			case <-time.After(time.Until(lastSweep.Add(idlePoll))):
			case <-ctx.Done():
				return
			}
		}
	}
}

func (w *worker) onCancel(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, w.n.prefix+".cancel.")
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cancelled) > 100_000 { // forget old ones (their tasks are long gone)
		for id, t := range w.cancelled {
			if time.Since(t) > 10*time.Minute || len(w.cancelled) > 200_000 {
				delete(w.cancelled, id)
			}
		}
	}
	w.cancelled[rest] = time.Now()
	if cancel := w.executing[rest]; cancel != nil {
		cancel()
	}
}

func (w *worker) wasCancelled(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.cancelled[id]
	return ok
}

// run executes one task message and reports its result.
func (w *worker) run(msg jetstream.Msg) {
	defer w.running.Done()
	defer func() { <-w.slots }()

	delivery := 1
	if meta, err := msg.Metadata(); err == nil {
		delivery = int(meta.NumDelivered)
	}
	ctx := w.stepBase
	data, err := w.d.blobs.unpack(ctx, msg.Data())
	if err != nil { // the object store is unreachable for now: try again later
		w.log.Warn("reading a task failed; handing it back", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	var t taskMsg
	err = json.Unmarshal(data, &t)
	if err != nil || t.Key == "" {
		w.log.Error("dropping an unreadable task", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("unreadable task")
		return
	}
	id := execID(t.Key, t.Gen)
	report := func(out json.RawMessage, err error) {
		w.publishResult(&t, delivery, out, err)
		_ = msg.Ack()
	}
	if t.V > protocolVersion {
		report(nil, fmt.Errorf("worker %s speaks queue protocol %d, the coordinator %d: upgrade the worker", w.cfg.Name, protocolVersion, t.V))
		return
	}
	if delivery > w.shared.MaxDeliveries {
		w.publishResult(&t, delivery, nil, &api.RunnerExitedError{Runner: "worker", Reason: fmt.Sprintf(
			"the step was handed to %d workers and each stopped answering before it finished (delivery limit %d)", delivery-1, w.shared.MaxDeliveries)})
		_ = msg.TermWithReason("delivery limit")
		return
	}

	// Registered before the cancelled check, so a cancellation arriving
	// in between is not missed.
	stepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	w.executing[id] = cancel
	_, gaveUp := w.cancelled[id]
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.executing, id)
		w.mu.Unlock()
	}()
	if gaveUp {
		_ = msg.Ack()
		return
	}

	// Heartbeats keep the lease while the step runs.
	hbDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(w.shared.Lease/3, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				_ = msg.InProgress()
			case <-hbDone:
				return
			}
		}
	}()
	defer close(hbDone)

	req, release, err := w.prepare(stepCtx, &t)
	if err != nil {
		if stepCtx.Err() == nil {
			report(nil, err)
		}
		return
	}
	defer release()
	host := &remoteHost{w: w, subject: w.n.hostSubject(t.Key, t.Gen), ctx: stepCtx}
	if delivery > 1 { // the coordinator says in the step's log that it was handed over
		host.send(&hostCall{Op: "started", Worker: w.cfg.Name, Delivery: delivery})
	}

	runCtx := stepCtx
	if req.Timeout > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(stepCtx, req.Timeout)
		defer c()
	}
	out, err := w.execute(runCtx, req, host)

	switch {
	case w.wasCancelled(id):
		_ = msg.Ack() // the coordinator gave up on it and wants no result
		return
	case err != nil && w.stepBase.Err() != nil:
		_ = msg.Nak() // this worker stopped the step: another one takes it
		return
	}
	if host.sent.Load() > 0 {
		host.sync() // every log line is delivered before the result
	}
	report(out, err)
}

// execute calls the runners, turning a runner panic into an error.
func (w *worker) execute(ctx context.Context, req *api.StepRequest, host api.Host) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("runner %s panicked: %v", req.Language, p)
		}
	}()
	return w.cfg.Runners.Execute(ctx, req, host)
}

// prepare rebuilds the step request on this machine: code, inputs and the
// WASM module from the object store, and the run's scratch folder here.
func (w *worker) prepare(ctx context.Context, t *taskMsg) (*api.StepRequest, func(), error) {
	req := t.Request
	if t.CodeRef != "" {
		code, err := w.d.blobs.get(ctx, t.CodeRef)
		if err != nil {
			return nil, nil, err
		}
		req.Code = string(code)
	}
	if t.InputsRef != "" {
		raw, err := w.d.blobs.get(ctx, t.InputsRef)
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(raw, &req.Inputs); err != nil {
			return nil, nil, fmt.Errorf("step inputs: %w", err)
		}
	}
	if t.ModuleRef != "" {
		path, err := w.d.blobs.getFile(ctx, t.ModuleRef, filepath.Join(w.cfg.WorkDir, "modules"), ".wasm")
		if err != nil {
			return nil, nil, err
		}
		req.Module = path
	}
	dir, release, err := w.acquireRunDir(req.RunID)
	if err != nil {
		return nil, nil, err
	}
	req.TempDir = dir
	return &req, release, nil
}

// runDirLinger is how long a run's scratch folder outlives its last step
// here (later steps of the run often land on the same worker).
const runDirLinger = 5 * time.Minute

func (w *worker) acquireRunDir(runID string) (string, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rd := w.runDirs[runID]
	if rd == nil {
		path := filepath.Join(w.cfg.WorkDir, "runs", token(runID))
		if err := os.MkdirAll(path, 0o700); err != nil {
			return "", nil, err
		}
		rd = &runDir{path: path}
		w.runDirs[runID] = rd
	}
	rd.users++
	if rd.timer != nil {
		rd.timer.Stop()
		rd.timer = nil
	}
	return rd.path, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		rd.users--
		if rd.users == 0 {
			rd.timer = time.AfterFunc(runDirLinger, func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				if rd.users == 0 && w.runDirs[runID] == rd {
					delete(w.runDirs, runID)
					os.RemoveAll(rd.path)
				}
			})
		}
	}, nil
}

// publishResult reports an execution on the result stream, retrying while
// NATS is unreachable (the result must not be lost: the coordinator waits
// for it, possibly after restarting).
func (w *worker) publishResult(t *taskMsg, delivery int, out json.RawMessage, err error) {
	ctx := w.resultBase
	res := resultMsg{V: protocolVersion, Key: t.Key, Gen: t.Gen, Worker: w.cfg.Name, Delivery: delivery, Error: encodeError(err)}
	if err == nil {
		if len(out) > w.shared.InlineLimit {
			ref, perr := w.retryPut(ctx, out)
			if perr != nil {
				res.Error = encodeError(fmt.Errorf("storing the step's output: %w", perr))
			}
			res.OutputRef = ref
		} else {
			res.Output = out
		}
	}
	data, _ := json.Marshal(&res)
	subject := w.n.resultSubject(t.Request.RunID)
	msgID := "r." + execID(t.Key, t.Gen)
	for {
		pctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, perr := w.d.js.Publish(pctx, subject, data, jetstream.WithMsgID(msgID))
		cancel()
		if perr == nil {
			return
		}
		w.log.Warn("publishing a result failed; retrying", "step", t.Request.Step, "err", perr)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *worker) retryPut(ctx context.Context, data []byte) (string, error) {
	var ref string
	err := retryEach(ctx, time.Minute, func(ctx context.Context) error {
		var err error
		ref, err = w.d.blobs.put(ctx, data)
		return err
	})
	return ref, err
}
