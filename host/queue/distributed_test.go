package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwe-run/hwe/host/engine"
)

// TestFanout1000TwoWorkerProcesses: 1,000 steps fanned out across two worker
// processes all complete; each ran exactly once and each result was
// recorded exactly once.
func TestFanout1000TwoWorkerProcesses(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL()})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	startWorkerProcess(t, emb.ClientURL(), "p1", 8, execLog)
	startWorkerProcess(t, emb.ClientURL(), "p2", 8, execLog)

	wf := fanout(1000, command{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, events := runWorkflow(t, ctx, wf, engine.Options{Executor: ex, Concurrency: 128})
	requireSucceeded(t, res)

	finished := map[string]int{}
	for _, e := range events {
		if e.Type == engine.EventStepFinished {
			finished[e.Step]++
		}
	}
	c := readExecLog(t, execLog)
	for _, s := range res.Steps {
		if out := stepOutput(t, s); out["step"] != s.Name {
			t.Errorf("step %s has output %v", s.Name, out)
		}
		if c.ended[s.Name] != 1 || finished[s.Name] != 1 {
			t.Errorf("step %s ran %d times, finished %d times", s.Name, c.ended[s.Name], finished[s.Name])
		}
	}
	if c.byPID["p1"] == 0 || c.byPID["p2"] == 0 {
		t.Errorf("work was not shared: %v", c.byPID)
	}
	st := waitStats(ex, func(st Stats) bool { return st.Applied >= 1001 })
	if st.Published != 1001 || st.Applied != 1001 || st.Duplicates != 0 {
		t.Errorf("stats %+v, want 1001 published and applied, no duplicates", st)
	}
	t.Logf("p1 ran %d steps, p2 %d; %+v", c.byPID["p1"], c.byPID["p2"], st)
}

// TestWorkerKilledMidStep: a worker process killed with SIGKILL while it runs
// steps loses its lease; the steps are handed to the other worker, which
// says so in their logs, and the run completes.
func TestWorkerKilledMidStep(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL(), Lease: time.Second})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	victim := startWorkerProcess(t, emb.ClientURL(), "victim", 2, execLog)
	startWorkerProcess(t, emb.ClientURL(), "survivor", 2, execLog)

	var specs []stepSpec
	for i := range 4 {
		specs = append(specs, stepSpec{name: fmt.Sprintf("slow%d", i), cmd: command{SleepMS: 1500}})
	}
	wf := testWorkflow("kill", specs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type outcome struct {
		res    *engine.RunResult
		events []engine.Event
	}
	done := make(chan outcome, 1)
	go func() {
		res, events := runWorkflow(t, ctx, wf, engine.Options{Executor: ex, Concurrency: 4})
		done <- outcome{res, events}
	}()

	// Kill the victim once it is running steps.
	onVictim := waitForStarts(t, execLog, "victim", 1)
	victim.kill9(t)

	out := <-done
	requireSucceeded(t, out.res)
	c := readExecLog(t, execLog)
	steps := byName(out.res)
	for _, name := range onVictim {
		if c.workers[name] != "survivor" || stepOutput(t, steps[name])["worker"] != "survivor" {
			t.Errorf("step %s was on the killed worker; finished on %q", name, c.workers[name])
		}
		took := false
		for _, e := range out.events {
			took = took || e.Step == name && e.Type == engine.EventStepLog && strings.Contains(e.Line, "worker survivor took the step over (delivery 2")
		}
		if !took {
			t.Errorf("step %s's log does not say it was handed over", name)
		}
	}
}

// waitForStarts waits until worker has started at least n steps and returns them.
func waitForStarts(t *testing.T, execLog, worker string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lines := readExecLines(t, execLog)
		var got []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 6 && f[0] == "start" && f[4] == worker {
				name, _ := untoken(f[2])
				got = append(got, name)
			}
		}
		if len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker %s started no steps", worker)
	return nil
}

// TestDeliveryLimit: a step that kills every worker it lands on fails once
// it has been handed out MaxDeliveries times, instead of going round forever.
func TestDeliveryLimit(t *testing.T) {
	emb := startNATS(t, t.TempDir())
	ex := newExecutor(t, ExecutorConfig{URL: emb.ClientURL(), Lease: time.Second, MaxDeliveries: 2})
	execLog := filepath.Join(t.TempDir(), "exec.log")
	for i := range 3 {
		startWorkerProcess(t, emb.ClientURL(), fmt.Sprintf("w%d", i), 1, execLog)
	}
	wf := testWorkflow("poison", []stepSpec{{name: "poison", cmd: command{Crash: true}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, _ := runWorkflow(t, ctx, wf, engine.Options{Executor: ex})
	want := "runner worker exited: the step was handed to 2 workers and each stopped answering before it finished (delivery limit 2)"
	if s := res.Steps[0]; s.Status != engine.StatusFailed || s.Error != want {
		t.Fatalf("poison step: %s %q", s.Status, s.Error)
	}
	if c := readExecLog(t, execLog); c.started["poison"] != 2 {
		t.Errorf("the step started %d times, want 2", c.started["poison"])
	}
}

// TestCoordinatorRestartMidRun: the coordinator and its embedded NATS
// server stop mid-run while workers keep running steps; a new coordinator on
// the same data folder resumes the run, waits for the steps that were out
// instead of sending them again, and the run completes with every step run
// exactly once.
func TestCoordinatorRestartMidRun(t *testing.T) {
	dataDir := t.TempDir()
	emb1, err := StartEmbedded(EmbeddedConfig{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	url := emb1.ClientURL()
	ex1, err := NewExecutor(context.Background(), ExecutorConfig{URL: url, Lease: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	execLog := filepath.Join(t.TempDir(), "exec.log")
	startWorkerProcess(t, url, "p1", 4, execLog)
	startWorkerProcess(t, url, "p2", 4, execLog)

	// 24 steps of 600 ms on 8 slots (three waves), then a join step.
	specs := []stepSpec{}
	var all []string
	for i := range 24 {
		name := fmt.Sprintf("s%02d", i)
		all = append(all, name)
		specs = append(specs, stepSpec{name: name, cmd: command{SleepMS: 600}})
	}
	specs = append(specs, stepSpec{name: "join", deps: all})
	wf := testWorkflow("restart", specs)

	// The run's history, as the server's store would keep it.
	var mu sync.Mutex
	previous := map[string]json.RawMessage{}
	record := func(e engine.Event) {
		if e.Type == engine.EventStepOutput {
			mu.Lock()
			previous[e.Step] = e.Output
			mu.Unlock()
		}
	}
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() {
		defer close(done1)
		engine.Run(ctx1, wf, engine.Options{RunID: "run-restart", Executor: ex1, Concurrency: 32, OnEvent: record, TempDir: t.TempDir()})
	}()
	for {
		mu.Lock()
		n := len(previous)
		mu.Unlock()
		if n >= 6 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The coordinator goes away (as in a crash: nothing is cancelled on
	// the workers), and its NATS server with it.
	ex1.Detach()
	stop1()
	<-done1
	ex1.Close()
	emb1.Shutdown()
	time.Sleep(300 * time.Millisecond) // workers finish steps meanwhile and retry their results

	emb2, err := StartEmbedded(EmbeddedConfig{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb2.Shutdown)
	if emb2.ClientURL() != url {
		t.Fatalf("restarted server on %s, want the same address %s", emb2.ClientURL(), url)
	}
	ex2 := newExecutor(t, ExecutorConfig{URL: url, Lease: 10 * time.Second})
	mu.Lock()
	prev := maps.Clone(previous)
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, _ := runWorkflow(t, ctx, wf, engine.Options{RunID: "run-restart", Executor: ex2, Concurrency: 32, Previous: prev})
	requireSucceeded(t, res)

	c := readExecLog(t, execLog)
	for _, s := range res.Steps {
		if c.ended[s.Name] != 1 {
			t.Errorf("step %s ran %d times", s.Name, c.ended[s.Name])
		}
	}
	st := ex2.Stats()
	if st.Attached == 0 {
		t.Errorf("the new coordinator sent everything again: %+v", st)
	}
	t.Logf("%d outputs from before the restart; new coordinator %+v", len(prev), st)
}

// TestThreeNodeCluster: with the streams and buckets replicated on a
// three-node JetStream cluster, runs keep completing after the node the
// coordinator is connected to is stopped.
func TestThreeNodeCluster(t *testing.T) {
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	nodes := make([]*Embedded, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ServerName: fmt.Sprintf("n%d", i+1),
				Cluster: &ClusterConfig{Name: "hwe-test", Listen: fmt.Sprintf("127.0.0.1:%d", ports[i]), Routes: routes}})
		}()
	}
	wg.Wait()
	var urls []string
	stopped := make([]bool, len(nodes))
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() {
			if !stopped[i] {
				n.Shutdown()
			}
		})
		urls = append(urls, n.ClientURL())
	}
	all := strings.Join(urls, ",")
	t0 := time.Now()
	defer func() { t.Logf("total %s", time.Since(t0)) }()
	ex := newExecutor(t, ExecutorConfig{URL: nodes[0].ClientURL(), Lease: 2 * time.Second}) // replicas: 3, found out
	if info, err := ex.d.tasks.Info(context.Background()); err != nil || info.Config.Replicas != 3 {
		t.Fatalf("task stream replicas: %v %v", info, err)
	}
	t.Logf("executor ready after %s", time.Since(t0))
	startWorker(t, WorkerConfig{URL: all, Name: "w1", Slots: 4})
	startWorker(t, WorkerConfig{URL: all, Name: "w2", Slots: 4})
	t.Logf("workers ready after %s", time.Since(t0))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wf := fanout(60, command{SleepMS: 50})
	done := make(chan *engine.RunResult, 1)
	var finished atomic.Int32
	underWay := make(chan struct{})
	go func() {
		res := engine.Run(ctx, wf, engine.Options{Executor: ex, Concurrency: 8, TempDir: t.TempDir(), OnEvent: func(e engine.Event) {
			if e.Type == engine.EventStepFinished && finished.Add(1) == 10 {
				close(underWay)
			}
		}})
		done <- res
	}()
	// Stop the node the coordinator talks to once the run is under way.
	<-underWay
	connected := ex.nc.ConnectedUrl()
	for i, n := range nodes {
		if n.ClientURL() == connected {
			t.Logf("stopping %s (n%d), the coordinator's node, after %d steps", connected, i+1, finished.Load())
			n.Shutdown()
			stopped[i] = true
			break
		}
	}
	res := <-done
	requireSucceeded(t, res)
	t.Logf("first run done after %s", time.Since(t0))

	// And a new run with the node still down.
	res2, _ := runWorkflow(t, ctx, fanout(10, command{}), engine.Options{Executor: ex, RunID: "after-node-loss"})
	requireSucceeded(t, res2)
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
