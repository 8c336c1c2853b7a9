package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/capability"
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/engine"
	"github.com/hwe-run/hwe/host/policy"
	"github.com/hwe-run/hwe/host/queue"
	"github.com/hwe-run/hwe/host/server"
	"github.com/hwe-run/hwe/host/workflow"
	"github.com/urfave/cli/v2"
)

// serverCommands are `hwe serve`, `hwe runs` and `hwe worker`, wired to the
// configuration and the runners.
func serverCommands(dir string, getenv func(string) string) []*cli.Command {
	loadCfg := func() (*config.Config, error) { return config.Load(dir, getenv) }
	worker := queue.WorkerCommand(func(c *cli.Context) (queue.Runners, error) {
		cfg, err := loadCfg()
		if err != nil {
			return nil, err
		}
		return runners(cfg)
	})
	return append(server.Commands(server.Deps{
		Getenv: getenv,
		Defaults: func(c *cli.Context) (server.Defaults, error) {
			cfg, err := loadCfg()
			if err != nil {
				return server.Defaults{}, err
			}
			return server.Defaults{Addr: cfg.Get("addr"), DataDir: cfg.Get("data_dir"), WorkflowsDir: cfg.Get("workflows_dir")}, nil
		},
		Runtime: func(c *cli.Context) (*server.Runtime, error) {
			cfg, err := loadCfg()
			if err != nil {
				return nil, err
			}
			return serverRuntime(c, cfg)
		},
	}), worker)
}

// serverRuntime builds what the server runs steps with: the runner registry
// as executor, the runners' own step checks, and the capability host per
// tenant (KV in the data folder, secrets from the environment for the local
// tenant and from <data>/secrets/<tenant> for the others).
func serverRuntime(c *cli.Context, cfg *config.Config) (*server.Runtime, error) {
	reg, err := runners(cfg)
	if err != nil {
		return nil, err
	}
	dataDir := c.String("data")
	if dataDir == "" {
		dataDir = cfg.Get("data_dir")
	}
	if dataDir == "" {
		dataDir = ".hwe"
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	kv, err := capability.OpenSQLiteKV(filepath.Join(dataDir, "kv.db"))
	if err != nil {
		return nil, err
	}
	local := policy.Local()
	rt := &server.Runtime{
		Executor:      reg,
		KnownLanguage: reg.Has,
		CheckStep: func(s *workflow.Step, w *workflow.Workflow) []string {
			if !reg.Has(s.Language) {
				return nil
			}
			return reg.CheckStep(context.Background(), &api.StepRequest{Workflow: w.Name, Step: s.Name,
				Language: s.Language, LanguageAsWritten: s.LanguageAsWritten, Code: s.Code, Module: s.Module,
				Function: s.Function, WorkflowFile: w.File, WorkflowDir: w.Dir, CodeLine: s.CodeLine})
		},
		NewHost: func(t *server.Tenant, req *api.StepRequest, emit engine.HostEvents) api.Host {
			base := capability.Config{KV: kv}
			if t == nil || t.Name == server.LocalTenant {
				base.Secrets = capability.EnvSecrets{}
			} else {
				base.Secrets = capability.DirSecrets{Dir: filepath.Join(dataDir, "secrets", t.Name)}
			}
			return capability.ForStep(base, req, emit)
		},
		Policy:         &local,
		DefaultTimeout: cfg.Duration("timeout"),
		Close: func() error {
			kv.Close()
			return reg.Close()
		},
	}
	if c.Command.Name != "serve" {
		return rt, nil // `hwe runs resume` runs in process: a serve may own the queue in this data folder
	}

	// Steps go through NATS JetStream: the embedded server unless --nats names
	// a cluster; the server's own --slots run on its in-process worker.
	dispatch, err := queue.StartServe(c.Context, queue.ServeConfig{
		DataDir: dataDir, NATS: c.String("nats"), NATSListen: c.String("nats-listen"),
		Slots: c.Int("slots"), Runners: reg,
	})
	if err != nil {
		kv.Close()
		reg.Close()
		return nil, fmt.Errorf("starting the step queue: %w", err)
	}
	if dispatch.Embedded != nil && c.String("nats-listen") != "" {
		fmt.Fprintf(c.App.ErrWriter, "hwe serve: workers can join with: hwe worker --nats %s\n", dispatch.WorkerURL)
	}
	rt.Executor = dispatch
	closeLocal := rt.Close
	rt.Close = func() error {
		err := dispatch.Close()
		if cerr := closeLocal(); err == nil {
			err = cerr
		}
		return err
	}
	return rt, nil
}
