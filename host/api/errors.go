package api

import (
	"errors"
	"fmt"
)

// StepError is a failure of the step's own code (an exception, a non-zero exit,
// a bad return value), as opposed to a failure of hwe. Line, when known, is
// the line in the workflow file where it happened.
type StepError struct {
	Message string
	File    string // workflow file, when Line is set
	Line    int    // 0 if unknown
	Trace   string // interpreter traceback, if any (goes to the log, not the message)
}

func (e *StepError) Error() string {
	if e.Line > 0 && e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
	return e.Message
}

// DeniedError is returned when step code asks for a capability its grant does
// not include.
type DeniedError struct {
	Capability string // "net", "fs", "env", "secrets", "kv", ...
	Detail     string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("capability %s denied: %s", e.Capability, e.Detail)
}

// LimitError is returned when a step exceeds a resource limit (time, memory,
// output size, processes).
type LimitError struct {
	Limit  string // "timeout", "memory", "output", "cpu", ...
	Detail string
}

func (e *LimitError) Error() string {
	if e.Limit == "timeout" && e.Detail != "" {
		return e.Detail // "step 'x' timed out after 30s" says it all
	}
	if e.Detail == "" {
		return e.Limit + " limit exceeded"
	}
	return fmt.Sprintf("%s limit exceeded: %s", e.Limit, e.Detail)
}

// RunnerExitedError is returned when a runner's process died while running a
// step ("runner python exited: signal: killed"). The step may be retried.
type RunnerExitedError struct {
	Runner string
	Reason string
}

func (e *RunnerExitedError) Error() string {
	return fmt.Sprintf("runner %s exited: %s", e.Runner, e.Reason)
}

// IsStepError reports whether err is (or wraps) a failure of step code.
func IsStepError(err error) bool {
	var se *StepError
	return errors.As(err, &se)
}
