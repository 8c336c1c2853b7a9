package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// WorkerFlags are the flags of `hwe worker`.
func WorkerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats", EnvVars: []string{"HWE_NATS"}, Usage: "NATS server `URL`s, comma-separated (a token as nats://TOKEN@host:port, or $" + EnvNATSToken + ")"},
		&cli.IntFlag{Name: "slots", Value: runtime.NumCPU(), Usage: "steps run at once"},
		&cli.StringFlag{Name: "runners", Usage: "languages or runner names to take, comma-separated (default: every runner installed here)"},
		&cli.StringFlag{Name: "labels", Usage: "this worker's labels `k=v,...`; steps asking for labels (env HWE_LABELS) run only where all of them match"},
		&cli.StringFlag{Name: "name", Usage: "worker name shown in step logs (default: host-pid)"},
		&cli.StringFlag{Name: "work-dir", Usage: "`DIR` for downloaded WASM modules and run scratch folders (default: a temporary folder)"},
		&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "on SIGTERM, how long running steps may finish before they are handed back"},
		&cli.StringFlag{Name: "prefix", Value: DefaultPrefix, Usage: "the coordinator's queue prefix"},
	}
}

// WorkerCommand is `hwe worker`. newRunners builds the runner registry the
// worker runs steps with (main passes its runners(cfg)); if the value has a
// Close() error method it is called when the worker stops.
func WorkerCommand(newRunners func(c *cli.Context) (Runners, error)) *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run steps handed out through NATS by hwe serve",
		Description: `Connects to the NATS server of an hwe serve (its embedded one, opened with
--nats-listen, or a shared cluster), takes steps of the languages it has runners for,
runs them with the same runners and sandbox as hwe run, and reports the results.
Host API calls of the steps (KV, secrets, HTTP) are performed by the server under the
step's grant. SIGINT/SIGTERM: stop taking steps, let running ones finish (--grace).`,
		Flags: WorkerFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit("hwe worker takes no arguments", 2)
			}
			cfg, err := WorkerConfigFromFlags(c)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			runners, err := newRunners(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if cl, ok := runners.(interface{ Close() error }); ok {
				defer cl.Close()
			}
			cfg.Runners = runners
			cfg.Logger = slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := RunWorker(ctx, cfg); err != nil {
				return cli.Exit("hwe worker: "+err.Error(), 1)
			}
			return nil
		},
	}
}

// WorkerConfigFromFlags reads the flags of WorkerFlags into a WorkerConfig
// (Runners and Logger are left for the caller).
func WorkerConfigFromFlags(c *cli.Context) (WorkerConfig, error) {
	cfg := WorkerConfig{URL: c.String("nats"), Slots: c.Int("slots"), Name: c.String("name"),
		WorkDir: c.String("work-dir"), Grace: c.Duration("grace"), Prefix: c.String("prefix")}
	if cfg.URL == "" {
		return cfg, fmt.Errorf("--nats URL is required (the address hwe serve printed, or your NATS cluster)")
	}
	if cfg.Slots < 1 {
		return cfg, fmt.Errorf("--slots must be at least 1")
	}
	if s := c.String("runners"); s != "" {
		for _, r := range strings.Split(s, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.Languages = append(cfg.Languages, r)
			}
		}
	}
	labels, err := ParseLabels(c.String("labels"))
	if err != nil {
		return cfg, fmt.Errorf("--labels: %w", err)
	}
	cfg.Labels = labels
	return cfg, nil
}

// ServeConfig is what `hwe serve` gives StartServe, mostly from its flags.
type ServeConfig struct {
	DataDir    string  // the server's data folder; the embedded NATS stores in DataDir/nats
	NATS       string  // --nats: an external NATS cluster's URLs ("" = embedded server)
	NATSListen string  // --nats-listen: open the embedded server on this address
	Slots      int     // --slots: steps the server runs itself (0 = dispatch only)
	Runners    Runners // the server's own runners, for its slots

	// Executor tunes the coordinator (lease, delivery limit, replicas);
	// its URL is filled in.
	Executor ExecutorConfig
	Logger   *slog.Logger // nil = discard
}

// Dispatch is the running queue of `hwe serve`: the executor to inject as the
// server's engine.Executor, the embedded NATS server, and the server's own
// in-process worker.
type Dispatch struct {
	*Executor
	// Embedded is the embedded NATS server (nil with an external one).
	Embedded *Embedded
	// WorkerURL is what `hwe worker --nats` needs to reach this queue
	// (without a token).
	WorkerURL string

	stopWorker context.CancelFunc
	workerDone chan error
}

// StartServe starts the queue for `hwe serve`: an embedded NATS server with
// JetStream in DataDir/nats unless cfg.NATS names a cluster, the executor,
// and an in-process worker with cfg.Slots slots over cfg.Runners.
//
// The embedded server listens on 127.0.0.1 (same port across restarts, so
// workers reconnect), or on cfg.NATSListen. A non-loopback address needs a
// token: $HWE_NATS_TOKEN, else one generated into DataDir/nats/token.
func StartServe(ctx context.Context, cfg ServeConfig) (*Dispatch, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatch{}
	ecfg := cfg.Executor
	ecfg.Logger = log
	if cfg.NATS != "" && cfg.NATSListen != "" {
		return nil, fmt.Errorf("--nats-listen opens the embedded NATS server; with --nats the cluster's own configuration decides where it listens")
	}
	if cfg.NATS != "" {
		ecfg.URL = cfg.NATS
		d.WorkerURL = redactURLs(cfg.NATS)
	} else {
		if cfg.DataDir == "" {
			return nil, fmt.Errorf("hwe serve: the embedded NATS server needs a data folder")
		}
		dir := cfg.DataDir + string(os.PathSeparator) + "nats"
		token, err := natsToken(dir, cfg.NATSListen)
		if err != nil {
			return nil, err
		}
		emb, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Listen: cfg.NATSListen, Token: token, Logger: log})
		if err != nil {
			return nil, err
		}
		d.Embedded = emb
		ecfg.URL = emb.ClientURL()
		d.WorkerURL = emb.ClientURL()
		if token != "" {
			ecfg.NATSOptions = append(ecfg.NATSOptions, natsTokenOption(token))
		}
	}
	ex, err := NewExecutor(ctx, ecfg)
	if err != nil {
		d.shutdownEmbedded()
		return nil, err
	}
	d.Executor = ex
	if cfg.Slots > 0 && cfg.Runners != nil {
		wctx, cancel := context.WithCancel(context.Background())
		d.stopWorker, d.workerDone = cancel, make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			d.workerDone <- RunWorker(wctx, WorkerConfig{URL: ecfg.URL, Prefix: ecfg.Prefix, Name: "server", Slots: cfg.Slots,
				Runners: cfg.Runners, Logger: log, NATSOptions: ecfg.NATSOptions, Ready: func() { close(ready) }})
		}()
		select {
		case <-ready:
		case err := <-d.workerDone:
			d.stopWorker = nil
			d.Close()
			return nil, fmt.Errorf("hwe serve: starting its own worker: %w", err)
		}
	}
	return d, nil
}

// Close detaches the executor (steps out on other workers stay there for
// the next start), stops the server's own worker, disconnects and stops the
// embedded NATS server.
func (d *Dispatch) Close() error {
	if d.Executor != nil {
		d.Executor.Detach()
	}
	if d.stopWorker != nil {
		d.stopWorker()
		<-d.workerDone
	}
	if d.Executor != nil {
		d.Executor.Close()
	}
	d.shutdownEmbedded()
	return nil
}

func (d *Dispatch) shutdownEmbedded() {
	if d.Embedded != nil {
		d.Embedded.Shutdown()
	}
}
