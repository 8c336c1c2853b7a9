package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hwe-run/hwe/host/api"
	runnerv1 "github.com/hwe-run/hwe/host/plugin/proto/hwe/runner/v1"
)

// DefaultPATH is the PATH a plugin process gets unless Config.Env sets one.
// It is a fixed value, not the host's PATH: plugins inherit nothing from the
// host's environment.
const DefaultPATH = "/usr/local/bin:/usr/bin:/bin"

// Config describes one runner plugin for NewClient.
type Config struct {
	// Name is the runner's name, used in errors ("runner python exited: ...").
	Name string
	// Languages are the canonical languages it serves; Version and Kind are
	// what Info reports until the plugin has been launched and asked.
	Languages []string
	Version   string
	Kind      string // "builtin-plugin" or "plugin"

	// Self runs the hwe binary that is running now (via /proc/self/exe on
	// Linux: the very file the kernel is executing, even if the path has
	// since been replaced, so there is nothing to checksum). Otherwise Path is
	// the executable and Checksum its SHA-256, verified before every launch.
	Self     bool
	Path     string
	Checksum []byte
	Args     []string

	// Env is the plugin's whole environment besides go-plugin's own
	// variables: the host's environment is never passed on. PATH defaults to
	// DefaultPATH.
	Env []string
	// Settings are passed to the runner's Configure after each launch.
	Settings map[string]string

	// Logger receives go-plugin's messages and the plugin's stdout and
	// stderr (at debug level). Default: discard.
	Logger hclog.Logger
	// StartTimeout bounds launch plus handshake plus Configure. Default 30s.
	StartTimeout time.Duration
}

// BuiltinConfig is the Config for one of hwe's own runners served by the
// running hwe binary re-executed as `hwe __runner NAME` (see
// ServeBuiltinIfRequested). info is the in-process runner's Info.
func BuiltinConfig(info api.RunnerInfo) Config {
	return Config{
		Name:      info.Name,
		Languages: info.Languages,
		Version:   info.Version,
		Kind:      "builtin-plugin",
		Self:      true,
		Args:      []string{BuiltinCommand, info.Name},
	}
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("runner plugin closed")

// Client is an api.Runner (and api.Closer) whose steps run in a plugin
// process. The process is started on the first Run, shared by concurrent
// Runs, and replaced by a fresh one after it dies: a crash fails only the
// steps that were running in it, each with *api.RunnerExitedError.
type Client struct {
	cfg    Config
	logger hclog.Logger

	mu         sync.Mutex
	closed     bool
	dir        string    // private 0700 folder for this client's sockets, made on first launch
	cur        *instance // the running plugin, or nil
	remoteInfo *api.RunnerInfo
}

var (
	_ api.Runner = (*Client)(nil)
	_ api.Closer = (*Client)(nil)
)

// NewClient checks cfg and returns a Client. Nothing is started until the
// first Run (or RemoteInfo).
func NewClient(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		return nil, errors.New("plugin: Config.Name is required")
	}
	if !cfg.Self {
		if cfg.Path == "" {
			return nil, fmt.Errorf("runner %s: no plugin executable given", cfg.Name)
		}
		if len(cfg.Checksum) != 32 {
			return nil, fmt.Errorf("runner %s: no SHA-256 checksum pinned for %s: hwe launches only verified plugins", cfg.Name, cfg.Path)
		}
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Client{cfg: cfg, logger: logger.Named(cfg.Name)}, nil
}

// Info describes the runner. After the plugin has been launched it carries
// the version the plugin reported; before, the configured one.
func (c *Client) Info() api.RunnerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remoteInfo != nil {
		return *c.remoteInfo
	}
	return c.staticInfo()
}

func (c *Client) staticInfo() api.RunnerInfo {
	return api.RunnerInfo{
		Name:      c.cfg.Name,
		Languages: slices.Clone(c.cfg.Languages),
		Version:   c.cfg.Version,
		Kind:      c.cfg.Kind,
		Path:      c.displayPath(),
	}
}

// RemoteInfo launches the plugin if needed and returns what it reports about
// itself (name, languages, version), with Kind and Path from the host's side.
func (c *Client) RemoteInfo() (api.RunnerInfo, error) {
	if _, err := c.get(); err != nil {
		return api.RunnerInfo{}, err
	}
	return c.Info(), nil
}

// Run sends the step to the plugin and serves host's API to it while the
// step runs. Cancelling ctx cancels the step in the plugin.
func (c *Client) Run(ctx context.Context, req *api.StepRequest, host api.Host) (json.RawMessage, error) {
	inst, err := c.get()
	if err != nil {
		return nil, err
	}
	token, done := inst.hosts.register(host)
	defer done()
	resp, err := inst.runner.Run(ctx, requestToProto(req, token))
	if err != nil {
		return nil, c.runFailed(ctx, inst, err)
	}
	if resp.Error != nil {
		return nil, errorFromProto(resp.Error)
	}
	return resp.Output, nil
}

// exitGrace is how long a failed call waits for the plugin process to be
// seen dead before deciding the connection broke with the process alive.
const exitGrace = 2 * time.Second

// runFailed turns a failed Run call into the error the step gets.
func (c *Client) runFailed(ctx context.Context, inst *instance, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the step was cancelled (or timed out), not the plugin
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		// The deadline travels with the call, and the plugin can see it pass
		// a moment before our own timer does.
		return context.DeadlineExceeded
	case codes.Canceled:
		return context.Canceled
	case codes.Unavailable:
	default:
		return fmt.Errorf("runner %s: %w", c.cfg.Name, err)
	}
	// The connection is gone, most likely because the plugin died. Wait for
	// its exit status, then make sure the next step gets a fresh process.
	select {
	case <-inst.proc.exited:
	case <-time.After(exitGrace):
	}
	exited, reason := inst.proc.hasExited()
	c.discard(inst)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case exited:
		return &api.RunnerExitedError{Runner: c.cfg.Name, Reason: reason}
	default:
		return &api.RunnerExitedError{Runner: c.cfg.Name, Reason: "lost the connection: " + status.Convert(err).Message()}
	}
}

// Close stops the plugin (letting the runner release its workers first),
// ends its process group and removes its sockets. Runs after Close fail with
// ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	inst := c.cur
	c.cur = nil
	dir := c.dir
	c.mu.Unlock()
	if inst != nil {
		inst.stop()
		inst.kill()
	}
	if dir != "" {
		return os.RemoveAll(dir)
	}
	return nil
}

// get returns the running plugin, launching a fresh one if there is none or
// the last one died.
func (c *Client) get() (*instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.cur != nil {
		if dead, _ := c.cur.proc.hasExited(); !dead {
			return c.cur, nil
		}
		c.cur.kill()
		c.cur = nil
	}
	inst, info, err := c.launch()
	if err != nil {
		return nil, err
	}
	c.cur = inst
	info.Kind = c.cfg.Kind
	info.Path = c.displayPath()
	c.remoteInfo = &info
	return inst, nil
}

// discard forgets inst if it is still the current plugin and ends it.
func (c *Client) discard(inst *instance) {
	c.mu.Lock()
	if c.cur == inst {
		c.cur = nil
	}
	c.mu.Unlock()
	inst.kill()
}

// instance is one launched plugin process.
type instance struct {
	client *goplugin.Client
	proc   *process
	runner runnerv1.RunnerClient
	hosts  *hostServer
	dir    string // this launch's socket folder, inside Client.dir

	killOnce sync.Once
}

// stop asks the runner to release what it holds; best effort.
func (i *instance) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = i.runner.Stop(ctx, &runnerv1.StopRequest{})
}

// kill ends the plugin's process group and removes its sockets.
func (i *instance) kill() {
	i.killOnce.Do(func() {
		i.client.Kill()
		if i.proc != nil {
			_ = i.proc.Kill(context.Background())
		}
		_ = os.RemoveAll(i.dir)
	})
}

// socketParent is where the private socket folders go: the temp folder,
// unless its path is so long that a socket path inside it would pass the
// kernel's ~108-byte limit for Unix socket addresses; then /tmp.
func socketParent() string {
	if dir := os.TempDir(); len(dir) <= 40 {
		return dir
	}
	return "/tmp"
}

// launch starts a plugin process, connects, serves the host API to it,
// configures it and asks for its Info. Called with c.mu held.
func (c *Client) launch() (*instance, api.RunnerInfo, error) {
	if c.dir == "" {
		dir, err := os.MkdirTemp(socketParent(), "hwe-plugin-")
		if err != nil {
			return nil, api.RunnerInfo{}, fmt.Errorf("runner %s: %w", c.cfg.Name, err)
		}
		c.dir = dir
	}
	dir, err := os.MkdirTemp(c.dir, "run-")
	if err != nil {
		return nil, api.RunnerInfo{}, fmt.Errorf("runner %s: %w", c.cfg.Name, err)
	}
	inst := &instance{dir: dir, hosts: newHostServer()}
	inst.client = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          goplugin.PluginSet{pluginName: &runnerPlugin{}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			cmd, err := c.command(spec.Env)
			if err != nil {
				return nil, err
			}
			inst.proc, err = newProcess(l, cmd)
			return inst.proc, err
		},
		// Plugins see only what Config.Env gives them.
		SkipHostEnv: true,
		// go-plugin makes a socket folder inside TempDir for both sides,
		// passes it to the plugin, and removes it when the plugin is killed.
		UnixSocketConfig: &goplugin.UnixSocketConfig{TempDir: dir},
		Logger:           c.logger,
		SyncStdout:       newLineLogger(c.logger.Named("stdout")),
		SyncStderr:       newLineLogger(c.logger.Named("stderr")),
		StartTimeout:     c.cfg.StartTimeout,
	})
	info, err := c.connect(inst)
	if err != nil {
		inst.kill()
		return nil, api.RunnerInfo{}, err
	}
	return inst, info, nil
}

func (c *Client) connect(inst *instance) (api.RunnerInfo, error) {
	rpc, err := inst.client.Client()
	if err != nil {
		var ce *ChecksumError
		if errors.As(err, &ce) {
			return api.RunnerInfo{}, ce
		}
		return api.RunnerInfo{}, fmt.Errorf("runner %s: starting %s: %w", c.cfg.Name, c.displayPath(), err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return api.RunnerInfo{}, fmt.Errorf("runner %s: %w", c.cfg.Name, err)
	}
	d := raw.(*dispensed)
	inst.runner = d.runner

	// Serve the host API on a broker connection for the life of the process.
	hostID := d.broker.NextId()
	go d.broker.AcceptAndServe(hostID, func(opts []grpc.ServerOption) *grpc.Server {
		s := newGRPCServer(opts)
		runnerv1.RegisterHostServer(s, inst.hosts)
		return s
	})

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StartTimeout)
	defer cancel()
	conf, err := d.runner.Configure(ctx, &runnerv1.ConfigureRequest{Settings: c.cfg.Settings, HostBrokerId: hostID})
	if err != nil {
		return api.RunnerInfo{}, fmt.Errorf("runner %s: configure: %w", c.cfg.Name, err)
	}
	if conf.Error != nil {
		return api.RunnerInfo{}, fmt.Errorf("runner %s: configure: %w", c.cfg.Name, errorFromProto(conf.Error))
	}
	info, err := d.runner.Info(ctx, &runnerv1.InfoRequest{})
	if err != nil {
		return api.RunnerInfo{}, fmt.Errorf("runner %s: info: %w", c.cfg.Name, err)
	}
	return api.RunnerInfo{Name: info.Name, Languages: info.Languages, Version: info.Version}, nil
}

// command builds the plugin's command line and environment, verifying the
// executable's checksum first. goEnv holds go-plugin's own variables.
func (c *Client) command(goEnv []string) (*exec.Cmd, error) {
	path := c.cfg.Path
	if c.cfg.Self {
		path = selfExecutable()
	} else if err := verifyChecksum(c.cfg.Name, path, c.cfg.Checksum); err != nil {
		return nil, err
	}
	cmd := exec.Command(path, c.cfg.Args...)
	cmd.Args[0] = c.displayPath()
	env := slices.Clone(goEnv)
	if !slices.ContainsFunc(c.cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append(env, "PATH="+DefaultPATH)
	}
	cmd.Env = append(env, c.cfg.Env...)
	return cmd, nil
}

func (c *Client) displayPath() string {
	if c.cfg.Self {
		if exe, err := os.Executable(); err == nil {
			return exe
		}
	}
	return c.cfg.Path
}

// selfExecutable names the running binary for exec. On Linux that is
// /proc/self/exe, which the kernel resolves to the file it is executing.
func selfExecutable() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe"
	}
	exe, _ := os.Executable()
	return exe
}
