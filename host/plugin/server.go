package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hwe-run/hwe/host/api"
	runnerv1 "github.com/hwe-run/hwe/host/plugin/proto/hwe/runner/v1"
)

// Configurer is implemented by runners that take settings from the host
// (an interpreter path, a pool size). Configure is called once, after the
// plugin starts and before its first Run. Unknown keys must be ignored.
type Configurer interface {
	Configure(ctx context.Context, settings map[string]string) error
}

// BuiltinCommand is the hidden first argument with which the hwe binary
// re-executes itself as one of its built-in runners: `hwe __runner python`.
const BuiltinCommand = "__runner"

// Serve serves r as a runner plugin on this process's stdio handshake and
// returns when the host ends the connection, after closing r if it is an
// api.Closer. It is the whole main of a third-party runner binary.
//
// Run by hand (without the host's handshake cookie), it prints an
// explanation and exits with status 1.
func Serve(r api.Runner) {
	// JSON lines on stderr are re-logged by the host at their own level.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "runner",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{pluginName: &runnerPlugin{runner: r, logger: logger}},
		GRPCServer:      newGRPCServer,
		Logger:          logger,
	})
	if c, ok := r.(api.Closer); ok {
		_ = c.Close()
	}
}

// ServeBuiltinIfRequested serves a built-in runner when args (os.Args) are
// `hwe __runner NAME`, and reports whether it did. main calls it first and
// returns at once when it reports true:
//
//	if plugin.ServeBuiltinIfRequested(os.Args, builtinRunner) { return }
//
// builtin returns the in-process runner for a name, or nil if there is none;
// an unknown name ends the process with status 1.
func ServeBuiltinIfRequested(args []string, builtin func(name string) api.Runner) bool {
	if len(args) < 3 || args[1] != BuiltinCommand {
		return false
	}
	r := builtin(args[2])
	if r == nil {
		fmt.Fprintf(os.Stderr, "hwe: no built-in runner named %q\n", args[2])
		os.Exit(1)
	}
	Serve(r)
	return true
}

// runnerServer serves hwe.runner.v1 Runner in the plugin process.
type runnerServer struct {
	runnerv1.UnimplementedRunnerServer
	runner api.Runner
	broker *goplugin.GRPCBroker
	logger hclog.Logger

	mu   sync.Mutex
	host runnerv1.HostClient // set by Configure; nil until then
}

func newRunnerServer(r api.Runner, broker *goplugin.GRPCBroker, logger hclog.Logger) *runnerServer {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &runnerServer{runner: r, broker: broker, logger: logger}
}

func (s *runnerServer) Info(context.Context, *runnerv1.InfoRequest) (*runnerv1.InfoResponse, error) {
	info := s.runner.Info()
	return &runnerv1.InfoResponse{Name: info.Name, Languages: info.Languages, Version: info.Version}, nil
}

func (s *runnerServer) Configure(ctx context.Context, req *runnerv1.ConfigureRequest) (*runnerv1.ConfigureResponse, error) {
	if req.HostBrokerId != 0 {
		// The host announced its Host service on the broker; the connection
		// info expires after a few seconds, so dial now, once, and keep it.
		conn, err := s.broker.Dial(req.HostBrokerId)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "dialing the host API: %v", err)
		}
		s.mu.Lock()
		s.host = runnerv1.NewHostClient(conn)
		s.mu.Unlock()
	}
	if c, ok := s.runner.(Configurer); ok {
		if err := c.Configure(ctx, req.Settings); err != nil {
			return &runnerv1.ConfigureResponse{Error: errorToProto(err)}, nil
		}
	}
	return &runnerv1.ConfigureResponse{}, nil
}

func (s *runnerServer) Run(ctx context.Context, req *runnerv1.RunRequest) (resp *runnerv1.RunResponse, err error) {
	s.mu.Lock()
	client := s.host
	s.mu.Unlock()
	var host api.Host = api.NopHost{}
	if client != nil {
		host = &remoteHost{client: client, token: req.HostToken}
	}

	// A panic in runner code fails this step, not every step the plugin is
	// running.
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("runner panicked", "panic", p, "stack", string(debug.Stack()))
			resp, err = &runnerv1.RunResponse{Error: errorToProto(fmt.Errorf("runner panicked: %v", p))}, nil
		}
	}()

	out, runErr := s.runner.Run(ctx, requestFromProto(req), host)
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return &runnerv1.RunResponse{Error: errorToProto(runErr)}, nil
	}
	if !json.Valid(out) {
		return &runnerv1.RunResponse{Error: errorToProto(fmt.Errorf("runner %s returned an output that is not JSON", s.runner.Info().Name))}, nil
	}
	return &runnerv1.RunResponse{Output: out}, nil
}

func (s *runnerServer) Stop(context.Context, *runnerv1.StopRequest) (*runnerv1.StopResponse, error) {
	if c, ok := s.runner.(api.Closer); ok {
		return &runnerv1.StopResponse{Error: errorToProto(c.Close())}, nil
	}
	return &runnerv1.StopResponse{}, nil
}

// remoteHost is the api.Host a runner sees inside the plugin process: each
// call goes back to the host over the broker connection, naming its run.
type remoteHost struct {
	client runnerv1.HostClient
	token  string
}

func (h *remoteHost) Log(stream, line string) {
	_, _ = h.client.Log(context.Background(), &runnerv1.LogRequest{HostToken: h.token, Stream: stream, Line: line})
}

func (h *remoteHost) Progress(fraction float64, message string) {
	_, _ = h.client.Progress(context.Background(), &runnerv1.ProgressRequest{HostToken: h.token, Fraction: fraction, Message: message})
}

func (h *remoteHost) HTTPFetch(ctx context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	resp, err := h.client.HTTPFetch(ctx, &runnerv1.HTTPFetchRequest{
		HostToken: h.token, Method: req.Method, Url: req.URL, Headers: req.Headers, Body: req.Body,
	})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, errorFromProto(resp.Error)
	}
	return &api.HTTPResponse{Status: int(resp.Status), Headers: resp.Headers, Body: resp.Body}, nil
}

func (h *remoteHost) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	resp, err := h.client.KVGet(ctx, &runnerv1.KVGetRequest{HostToken: h.token, Key: key})
	if err != nil {
		return nil, false, err
	}
	if resp.Error != nil {
		return nil, false, errorFromProto(resp.Error)
	}
	return resp.Value, resp.Found, nil
}

func (h *remoteHost) KVPut(ctx context.Context, key string, value []byte) error {
	resp, err := h.client.KVPut(ctx, &runnerv1.KVPutRequest{HostToken: h.token, Key: key, Value: value})
	if err != nil {
		return err
	}
	return errorFromProto(resp.Error)
}

func (h *remoteHost) Secret(ctx context.Context, name string) (string, error) {
	resp, err := h.client.Secret(ctx, &runnerv1.SecretRequest{HostToken: h.token, Name: name})
	if err != nil {
		return "", err
	}
	if resp.Error != nil {
		return "", errorFromProto(resp.Error)
	}
	return resp.Value, nil
}
