package testfabric

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// maxDump bounds how much of each output file is dumped on failure.
const maxDump = 64 << 10

// Process is a long-running command started inside a node's namespace.
type Process struct {
	node  *Node
	label string
	cmd   *exec.Cmd

	stdoutPath, stderrPath string
	files                  []*os.File

	done    chan struct{}
	waitErr error // valid once done is closed

	mu       sync.Mutex
	stopping bool
	dumped   bool
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func newProcess(n *Node, label string, cmd *exec.Cmd) (*Process, error) {
	label = unsafeChars.ReplaceAllString(label, "_")
	seq := n.fabric.nextSeq()
	base := filepath.Join(n.fabric.logDir, fmt.Sprintf("%s-%s-%d", unsafeChars.ReplaceAllString(n.name, "_"), label, seq))
	p := &Process{node: n, label: label, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		f, err := os.Create(base + ".stdout")
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		p.stdoutPath = f.Name()
		cmd.Stdout = f
	}
	if cmd.Stderr == nil {
		f, err := os.Create(base + ".stderr")
		if err != nil {
			p.closeFiles()
			return nil, err
		}
		p.files = append(p.files, f)
		p.stderrPath = f.Name()
		cmd.Stderr = f
	}
	return p, nil
}

// started launches the reaper goroutine.
func (p *Process) started() {
	go func() {
		p.waitErr = p.cmd.Wait()
		p.closeFiles()
		close(p.done)
	}()
}

// markNeverStarted makes a process that failed to start look exited.
func (p *Process) markNeverStarted(err error) {
	p.waitErr = err
	close(p.done)
}

func (p *Process) closeFiles() {
	for _, f := range p.files {
		f.Close()
	}
}

// String describes the process for messages.
func (p *Process) String() string {
	pid := 0
	if p.cmd.Process != nil {
		pid = p.cmd.Process.Pid
	}
	return fmt.Sprintf("%s[%d] on %s", p.label, pid, p.node)
}

// Pid returns the process ID.
func (p *Process) Pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Node returns the node the process runs on.
func (p *Process) Node() *Node { return p.node }

// Done is closed when the process has exited and has been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the result of waiting for the process once it has exited
// (nil for exit status 0), or nil while it is running.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// Wait blocks until the process exits and returns its wait error.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// StdoutPath returns the file receiving the standard output ("" when the
// caller supplied its own writer).
func (p *Process) StdoutPath() string { return p.stdoutPath }

// StderrPath returns the file receiving the standard error ("" when the
// caller supplied its own writer).
func (p *Process) StderrPath() string { return p.stderrPath }

// Output returns what the process wrote so far to its output files.
func (p *Process) Output() (stdout, stderr string) {
	return readTail(p.stdoutPath, -1), readTail(p.stderrPath, -1)
}

// Signal sends sig to the process if it is still running.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Stop sends SIGTERM, waits up to timeout for the process to exit, then
// sends SIGKILL. It returns nil once the process is gone, whatever its exit
// status; use Err for the latter.
func (p *Process) Stop(timeout time.Duration) error { return p.stop(timeout) }

// Kill sends SIGKILL and waits for the process to be reaped.
func (p *Process) Kill() error { return p.stop(0) }

func (p *Process) stop(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	if timeout > 0 {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(timeout):
			p.node.fabric.t.Logf("testfabric: %s did not exit %v after SIGTERM, sending SIGKILL", p, timeout)
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still not reaped 10s after SIGKILL", p)
	}
}

// Stopped reports whether Stop or Kill was called (so an exit was expected).
func (p *Process) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// dumpLogs logs the tail of the output files once.
func (p *Process) dumpLogs(t testing.TB) {
	p.mu.Lock()
	if p.dumped {
		p.mu.Unlock()
		return
	}
	p.dumped = true
	p.mu.Unlock()
	status := "running"
	if p.Exited() {
		status = fmt.Sprintf("exited: %v", p.waitErr)
		if p.waitErr == nil {
			status = "exited: status 0"
		}
	}
	t.Logf("testfabric: ---- %s (%s): %s", p, status, cmdline(p.cmd.Path, p.cmd.Args[1:]))
	for _, f := range []struct{ what, path string }{{"stdout", p.stdoutPath}, {"stderr", p.stderrPath}} {
		if f.path == "" {
			continue
		}
		if s := readTail(f.path, maxDump); s != "" {
			t.Logf("testfabric: ---- %s %s (%s):\n%s", p.label, f.what, f.path, s)
		}
	}
}

// readTail returns the last max bytes of a file (all of it when max < 0).
func readTail(path string, max int64) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if max >= 0 {
		if st, err := f.Stat(); err == nil && st.Size() > max {
			if _, err := f.Seek(-max, io.SeekEnd); err == nil {
				b, _ := io.ReadAll(f)
				return "[...]" + string(b)
			}
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
