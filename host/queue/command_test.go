package queue

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/engine"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"
)

// workerApp is `hwe worker` inside a minimal CLI app.
func workerApp(stderr *bytes.Buffer) *cli.App {
	return &cli.App{
		Name:           "hwe",
		ErrWriter:      stderr,
		Writer:         stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{WorkerCommand(func(c *cli.Context) (Runners, error) {
			return testRegistry(c.String("name")), nil
		})},
	}
}

// TestServeAndWorkerCommand: StartServe as `hwe serve` uses it (embedded
// NATS in the data folder, dispatch only) and `hwe worker` run from its flags.
func TestServeAndWorkerCommand(t *testing.T) {
	data := t.TempDir()
	d, err := StartServe(context.Background(), ServeConfig{DataDir: data, Slots: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(filepath.Join(data, "nats", "jetstream")); err != nil {
		t.Errorf("JetStream does not store in the data folder: %v", err)
	}

	var stderr bytes.Buffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workerApp(&stderr).RunContext(ctx, []string{"hwe", "worker", "--nats", d.WorkerURL, "--slots", "2",
			"--runners", "test", "--labels", "gpu=true", "--name", "cli-worker"})
	}()
	wf := testWorkflow("cli", []stepSpec{{name: "a", env: map[string]string{EnvLabels: "gpu=true"}}, {name: "b", deps: []string{"a"}}})
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, _ := runWorkflow(t, rctx, wf, engine.Options{Executor: d})
	requireSucceeded(t, res)
	for _, s := range res.Steps {
		if w := stepOutput(t, s)["worker"]; w != "cli-worker" {
			t.Errorf("step %s ran on %v", s.Name, w)
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if !strings.Contains(stderr.String(), "worker ready") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestWorkerCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"hwe", "worker"},
		{"hwe", "worker", "--nats", "nats://127.0.0.1:1", "--labels", "=x"},
		{"hwe", "worker", "--nats", "nats://127.0.0.1:1", "--slots", "0"},
	} {
		var stderr bytes.Buffer
		err := workerApp(&stderr).Run(args)
		var ec cli.ExitCoder
		if !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
	}
}

// TestServeOwnSlots: with --slots the server runs steps itself.
func TestServeOwnSlots(t *testing.T) {
	d, err := StartServe(context.Background(), ServeConfig{DataDir: t.TempDir(), Slots: 2, Runners: testRegistry("server")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, _ := runWorkflow(t, context.Background(), fanout(5, command{}), engine.Options{Executor: d})
	requireSucceeded(t, res)
	if w := stepOutput(t, res.Steps[0])["worker"]; w != "server" {
		t.Errorf("ran on %v", w)
	}
}

// TestServeOpenToOtherMachines: --nats-listen on a non-loopback address
// requires a token, generated into the data folder when none is set; a
// server with a token refuses clients without it. (Nothing here listens
// beyond 127.0.0.1.)
func TestServeOpenToOtherMachines(t *testing.T) {
	t.Setenv(EnvNATSToken, "")
	dir := t.TempDir()
	if tok, err := natsToken(dir, "127.0.0.1:4222"); err != nil || tok != "" {
		t.Errorf("loopback: token %q, %v", tok, err)
	}
	token, err := natsToken(dir, "0.0.0.0:4222")
	if err != nil || len(token) < 32 {
		t.Fatalf("token %q, %v", token, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v %v", fi, err)
	}
	if again, _ := natsToken(dir, "10.0.0.5:4222"); again != token {
		t.Error("the token changed between starts")
	}
	t.Setenv(EnvNATSToken, "from-env")
	if tok, _ := natsToken(dir, "10.0.0.5:4222"); tok != "from-env" {
		t.Errorf("token %q, want $%s", tok, EnvNATSToken)
	}
	if _, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Listen: "0.0.0.0:0"}); err == nil {
		t.Error("an embedded server opened to the network without a token")
	}

	t.Setenv(EnvNATSToken, "")
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	if nc, err := nats.Connect(emb.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("connected without the token")
	}
	u, _ := url.Parse(emb.ClientURL())
	u.User = url.User(token)
	ex := newExecutor(t, ExecutorConfig{URL: u.String()})
	startWorker(t, WorkerConfig{URL: u.String(), Name: "remote", Slots: 1})
	res, _ := runWorkflow(t, context.Background(), fanout(2, command{}), engine.Options{Executor: ex})
	requireSucceeded(t, res)
}
