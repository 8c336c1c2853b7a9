//go:build wasip1

package hwe

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
)

// Inputs are a step's inputs: each direct dependency's output, keyed by the
// dependency's step name. A step without dependencies gets an empty map.
type Inputs map[string]json.RawMessage

// Decode decodes the output of the dependency called step into v.
func (in Inputs) Decode(step string, v any) error {
	raw, ok := in[step]
	if !ok {
		return fmt.Errorf("no input from step %q", step)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("input from step %q: %w", step, err)
	}
	return nil
}

// Input returns the step's inputs as hwe sent them: one JSON object.
func Input() []byte { return readInput() }

// ReadInputs decodes the step's inputs.
func ReadInputs() (Inputs, error) {
	var in Inputs
	if err := json.Unmarshal(readInput(), &in); err != nil {
		return nil, fmt.Errorf("decoding the step's inputs: %w", err)
	}
	if in == nil {
		in = Inputs{}
	}
	return in, nil
}

// Output sets the step's output, which must be one JSON document.
func Output(doc []byte) {
	extismOutputSet(toKernel(doc), uint64(len(doc)))
}

// OutputJSON sets the step's output to v encoded as JSON.
func OutputJSON(v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the step's output: %w", err)
	}
	Output(doc)
	return nil
}

// Fail sets the message the step fails with. The exported function must
// then return a non-zero value.
func Fail(message string) {
	extismErrorSet(toKernel([]byte(message)))
}

// Run is the body of a typical step function: it decodes the inputs,
// calls fn, and sets fn's result as the output (returning 0) or fails the
// step with fn's error (returning 1). A panic in fn fails the step with
// the panic's message instead of aborting the module.
func Run(fn func(Inputs) (any, error)) (status int32) {
	defer func() {
		if p := recover(); p != nil {
			Fail(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
			status = 1
		}
	}()
	in, err := ReadInputs()
	if err == nil {
		var result any
		if result, err = fn(in); err == nil {
			err = OutputJSON(result)
		}
	}
	if err != nil {
		Fail(err.Error())
		return 1
	}
	return 0
}
