package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// process runs one plugin executable for go-plugin (it implements go-plugin's
// runner.Runner, handed over through ClientConfig.RunnerFunc). We run the
// process ourselves rather than let go-plugin do it because:
//
//   - the plugin gets its own process group, so ending it also ends every
//     interpreter worker it started, even after the plugin itself crashed;
//   - the exit status is recorded the moment the process dies, so a step that
//     was running gets "signal: killed" at once instead of waiting for every
//     inherited pipe to close;
//   - stdin is /dev/null instead of the host's terminal;
//   - RunnerFunc is the only way go-plugin puts the sockets of both sides in a
//     private folder (PLUGIN_UNIX_SOCKET_DIR) and removes it afterwards.
type process struct {
	logger hclog.Logger
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser

	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // valid after exited is closed

	once sync.Once
}

var _ runner.Runner = (*process)(nil)

// newProcess prepares cmd to run as a plugin. It takes ownership of cmd's
// stdio and process attributes.
func newProcess(logger hclog.Logger, cmd *exec.Cmd) (*process, error) {
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = stdoutW
	cmd.Stderr = stderrW
	cmd.SysProcAttr = processAttributes()
	return &process{
		logger: logger,
		cmd:    cmd,
		// Everything the plugin prints on its stdout after the handshake line
		// is logged at debug level by lineLogger; go-plugin reads the rest.
		stdout: readCloser{io.TeeReader(stdoutR, newLineLogger(logger.Named("stdout"))), stdoutR},
		stderr: stderrR,
		exited: make(chan struct{}),
	}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (p *process) Start(context.Context) error {
	err := p.cmd.Start()
	// The child has its own copies of the write ends; ours must be closed so
	// the readers see EOF when the child (and everything it started) is gone.
	p.cmd.Stdout.(*os.File).Close()
	p.cmd.Stderr.(*os.File).Close()
	if err != nil {
		p.stdout.Close()
		p.stderr.Close()
		p.waitErr = err
		close(p.exited)
		return err
	}
	p.logger.Debug("plugin started", "path", p.cmd.Path, "pid", p.cmd.Process.Pid)
	go func() {
		p.waitErr = p.cmd.Wait()
		// Whatever the plugin left running (interpreter workers) goes with it.
		p.killGroup()
		close(p.exited)
	}()
	return nil
}

// Wait blocks until the plugin process has exited.
func (p *process) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill ends the plugin and its whole process group and waits for it.
func (p *process) Kill(context.Context) error {
	if p.cmd.Process == nil {
		return nil
	}
	p.killGroup()
	<-p.exited
	return nil
}

func (p *process) killGroup() {
	p.once.Do(func() {
		// Negative pid: the whole group the plugin leads.
		err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			p.logger.Debug("killing plugin process group", "error", err)
		}
	})
}

// hasExited reports whether the process is gone, and why.
func (p *process) hasExited() (bool, string) {
	select {
	case <-p.exited:
		return true, exitReason(p.waitErr)
	default:
		return false, ""
	}
}

// exitReason phrases how a process ended: "signal: killed", "exit status 2".
func exitReason(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

func (p *process) Stdout() io.ReadCloser { return p.stdout }
func (p *process) Stderr() io.ReadCloser { return p.stderr }
func (p *process) Name() string          { return p.cmd.Path }

func (p *process) ID() string {
	if p.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(p.cmd.Process.Pid)
}

func (p *process) Diagnose(context.Context) string {
	return fmt.Sprintf("%s did not answer the hwe.runner.v1 plugin handshake: is it an hwe runner plugin built for this machine?", p.cmd.Path)
}

func (p *process) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *process) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// lineLogger is an io.Writer that logs each complete line it is given at
// debug level. It is how a plugin's stdout and stderr reach the host's log.
type lineLogger struct {
	mu     sync.Mutex
	logger hclog.Logger
	buf    []byte
}

func newLineLogger(logger hclog.Logger) *lineLogger { return &lineLogger{logger: logger} }

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.logger.Debug(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	// A line longer than a scanner's buffer is logged in pieces rather than
	// held forever.
	if len(w.buf) > bufio.MaxScanTokenSize {
		w.logger.Debug(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
