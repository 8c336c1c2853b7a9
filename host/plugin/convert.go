package plugin

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/hwe-run/hwe/host/api"
	runnerv1 "github.com/hwe-run/hwe/host/plugin/proto/hwe/runner/v1"
)

// This file translates between the host's Go contracts (host/api) and the
// wire messages of hwe.runner.v1, in both directions.

func requestToProto(r *api.StepRequest, hostToken string) *runnerv1.RunRequest {
	inputs := make(map[string][]byte, len(r.Inputs))
	for name, doc := range r.Inputs {
		inputs[name] = doc
	}
	return &runnerv1.RunRequest{
		RunId:             r.RunID,
		Tenant:            r.Tenant,
		Workflow:          r.Workflow,
		Step:              r.Step,
		Attempt:           int32(r.Attempt),
		Language:          r.Language,
		LanguageAsWritten: r.LanguageAsWritten,
		Code:              r.Code,
		Inputs:            inputs,
		Module:            r.Module,
		Function:          r.Function,
		WorkflowFile:      r.WorkflowFile,
		WorkflowDir:       r.WorkflowDir,
		CodeLine:          int32(r.CodeLine),
		Env:               r.Env,
		Grant:             grantToProto(r.Grant),
		TimeoutNanos:      int64(r.Timeout),
		Isolation:         r.Isolation,
		TempDir:           r.TempDir,
		HostToken:         hostToken,
	}
}

func requestFromProto(p *runnerv1.RunRequest) *api.StepRequest {
	var inputs map[string]json.RawMessage
	if len(p.Inputs) > 0 {
		inputs = make(map[string]json.RawMessage, len(p.Inputs))
		for name, doc := range p.Inputs {
			inputs[name] = json.RawMessage(doc)
		}
	}
	return &api.StepRequest{
		RunID:             p.RunId,
		Tenant:            p.Tenant,
		Workflow:          p.Workflow,
		Step:              p.Step,
		Attempt:           int(p.Attempt),
		Language:          p.Language,
		LanguageAsWritten: p.LanguageAsWritten,
		Code:              p.Code,
		Inputs:            inputs,
		Module:            p.Module,
		Function:          p.Function,
		WorkflowFile:      p.WorkflowFile,
		WorkflowDir:       p.WorkflowDir,
		CodeLine:          int(p.CodeLine),
		Env:               p.Env,
		Grant:             grantFromProto(p.Grant),
		Timeout:           time.Duration(p.TimeoutNanos),
		Isolation:         p.Isolation,
		TempDir:           p.TempDir,
	}
}

func grantToProto(g api.Grant) *runnerv1.Grant {
	return &runnerv1.Grant{
		Net:            g.Net,
		FsRead:         g.FSRead,
		FsWrite:        g.FSWrite,
		Env:            g.Env,
		Secrets:        g.Secrets,
		Kv:             g.KV,
		MemoryBytes:    g.Memory,
		CpuNanos:       int64(g.CPU),
		Processes:      int32(g.Processes),
		MaxOutputBytes: g.MaxOutput,
	}
}

func grantFromProto(g *runnerv1.Grant) api.Grant {
	if g == nil {
		return api.Grant{}
	}
	return api.Grant{
		Net:       g.Net,
		FSRead:    g.FsRead,
		FSWrite:   g.FsWrite,
		Env:       g.Env,
		Secrets:   g.Secrets,
		KV:        g.Kv,
		Memory:    g.MemoryBytes,
		CPU:       time.Duration(g.CpuNanos),
		Processes: int(g.Processes),
		MaxOutput: g.MaxOutputBytes,
	}
}

// errorToProto turns a Go error into wire data, keeping the typed errors of
// host/api recognisable on the other side. nil stays nil.
func errorToProto(err error) *runnerv1.Error {
	if err == nil {
		return nil
	}
	var (
		step   *api.StepError
		denied *api.DeniedError
		limit  *api.LimitError
		exited *api.RunnerExitedError
	)
	switch {
	case errors.As(err, &step):
		return &runnerv1.Error{Kind: runnerv1.Error_KIND_STEP, Message: step.Message,
			File: step.File, Line: int32(step.Line), Trace: step.Trace}
	case errors.As(err, &denied):
		return &runnerv1.Error{Kind: runnerv1.Error_KIND_DENIED, Message: err.Error(),
			What: denied.Capability, Detail: denied.Detail}
	case errors.As(err, &limit):
		return &runnerv1.Error{Kind: runnerv1.Error_KIND_LIMIT, Message: err.Error(),
			What: limit.Limit, Detail: limit.Detail}
	case errors.As(err, &exited):
		return &runnerv1.Error{Kind: runnerv1.Error_KIND_RUNNER_EXITED, Message: err.Error(),
			What: exited.Runner, Detail: exited.Reason}
	default:
		return &runnerv1.Error{Kind: runnerv1.Error_KIND_RUNNER, Message: err.Error()}
	}
}

// remoteError is a failure of the runner on the far side that has no typed
// equivalent in host/api. Its message is the remote error's text.
type remoteError struct{ message string }

func (e *remoteError) Error() string { return e.message }

// errorFromProto is the inverse of errorToProto. nil stays nil.
func errorFromProto(e *runnerv1.Error) error {
	if e == nil {
		return nil
	}
	switch e.Kind {
	case runnerv1.Error_KIND_STEP:
		return &api.StepError{Message: e.Message, File: e.File, Line: int(e.Line), Trace: e.Trace}
	case runnerv1.Error_KIND_DENIED:
		return &api.DeniedError{Capability: e.What, Detail: e.Detail}
	case runnerv1.Error_KIND_LIMIT:
		return &api.LimitError{Limit: e.What, Detail: e.Detail}
	case runnerv1.Error_KIND_RUNNER_EXITED:
		return &api.RunnerExitedError{Runner: e.What, Reason: e.Detail}
	default:
		return &remoteError{message: e.Message}
	}
}
