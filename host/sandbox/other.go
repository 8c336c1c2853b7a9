//go:build !linux

package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// On systems other than Linux there are no OS layers: Wrap only scrubs the
// environment and gives the process a private workdir, and a policy that
// requires any layer refuses to run.

// MaybeRunHelper does nothing off Linux.
func MaybeRunHelper() {}

// Probe reports every OS layer off.
func Probe() Report {
	r := Report{Mode: "none", Kernel: "not Linux", User: fmt.Sprint(os.Geteuid())}
	for _, l := range Layers {
		active := l == LayerEnv || l == LayerWorkdir
		detail := "needs Linux"
		if active {
			detail = "applied by Wrap"
		}
		r.Layers = append(r.Layers, LayerStatus{Name: l, Active: active, Detail: detail})
	}
	return r
}

// Doctor prints the probe's report.
func Doctor(w io.Writer) error { return Probe().Write(w) }

// Sandbox is one wrapped process.
type Sandbox struct {
	workdir string
	own     bool
}

// Wrap scrubs the environment and sets a private workdir.
func Wrap(cmd *exec.Cmd, spec Spec) (*Sandbox, error) {
	required, err := requiredLayers(spec)
	if err != nil {
		return nil, err
	}
	if missing := Probe().Missing(required); len(missing) > 0 {
		return nil, fmt.Errorf("sandbox: the policy requires %s, which need Linux", strings.Join(missing, ", "))
	}
	sb := &Sandbox{workdir: spec.Workdir}
	if sb.workdir == "" {
		if sb.workdir, err = os.MkdirTemp("", "hwe-step-"); err != nil {
			return nil, err
		}
		sb.own = true
	}
	var env []string
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "HWE_SECRET_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+sb.workdir)
	if cmd.Dir == "" {
		cmd.Dir = sb.workdir
	}
	return sb, nil
}

// Start wraps cmd and starts it.
func Start(cmd *exec.Cmd, spec Spec) (func(), error) {
	sb, err := Wrap(cmd, spec)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		sb.Close()
		return nil, err
	}
	return func() { sb.Close() }, nil
}

// Workdir is the process's working folder.
func (s *Sandbox) Workdir() string { return s.workdir }

// Layers lists the layers applied.
func (s *Sandbox) Layers() []string { return []string{LayerEnv, LayerWorkdir} }

// Explain returns err unchanged.
func (s *Sandbox) Explain(err error) error { return err }

// Close removes the workdir Wrap made.
func (s *Sandbox) Close() error {
	if s.own {
		return os.RemoveAll(s.workdir)
	}
	return nil
}
