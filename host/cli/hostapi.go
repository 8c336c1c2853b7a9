package cli

import (
	"os"
	"path/filepath"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
)

// localHostAPI is the host API of `hwe run`: the built-in local policy bounds
// every step's `allow`, secrets come from HWE_SECRET_<NAME> variables, and
// KV lives in the data folder (SQLite) when one is configured, else in memory
// for the life of the command.
type localHostAPI struct {
	policy policy.Policy
	base   capability.Config
	close  func()
}

func newLocalHostAPI(cfg *config.Config, getenv func(string) string) (*localHostAPI, error) {
	h := &localHostAPI{policy: policy.Local(), close: func() {}}
	h.base.Secrets = capability.EnvSecrets{Lookup: func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}}
	if dir := cfg.Get("data_dir"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		kv, err := capability.OpenSQLiteKV(filepath.Join(dir, "kv.db"))
		if err != nil {
			return nil, err
		}
		h.base.KV, h.close = kv, func() { kv.Close() }
	} else {
		h.base.KV = capability.NewMemoryKV()
	}
	return h, nil
}

// wire sets the engine options that route steps' host calls through the capability layer.
func (h *localHostAPI) wire(opts *engine.Options) {
	opts.Grant = h.policy.Effective
	opts.NewHost = func(req *api.StepRequest, emit engine.HostEvents) api.Host {
		return capability.ForStep(h.base, req, emit)
	}
}
