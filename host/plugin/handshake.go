package plugin

import (
	"context"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hwe-run/hwe/host/api"
	runnerv1 "github.com/hwe-run/hwe/host/plugin/proto/hwe/runner/v1"
)

// ProtocolVersion is the go-plugin application protocol version of
// hwe.runner.v1. It changes only when the contract breaks.
const ProtocolVersion = 1

// Handshake is what a runner plugin and the host must agree on before they
// talk. The cookie is not a security measure: it stops someone from running a
// plugin binary by hand by mistake.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HWE_RUNNER_PLUGIN",
	MagicCookieValue: "hwe.runner.v1",
}

// pluginName is the name under which the runner is dispensed.
const pluginName = "runner"

// maxMessageBytes bounds one gRPC message (a step's inputs or output, a KV
// value). gRPC's default of 4 MiB is too small for real step outputs.
const maxMessageBytes = 256 << 20

// runnerPlugin is the go-plugin glue for both sides: GRPCServer runs in the
// plugin process, GRPCClient in the host.
type runnerPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	runner api.Runner   // plugin side only
	logger hclog.Logger // plugin side only
}

func (p *runnerPlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	runnerv1.RegisterRunnerServer(s, newRunnerServer(p.runner, broker, p.logger))
	return nil
}

func (p *runnerPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &dispensed{runner: runnerv1.NewRunnerClient(conn), broker: broker}, nil
}

// dispensed is what the host gets from go-plugin for one plugin process.
type dispensed struct {
	runner runnerv1.RunnerClient
	broker *goplugin.GRPCBroker
}

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes))
	return grpc.NewServer(opts...)
}
