package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// rieFunction runs one function's invocations, each in a sandbox of its
// own: an idle one when there is one (warm), else a new one (a cold
// start), up to the function's reserved concurrency, past which an
// invocation waits for a sandbox to come free (Lambda would throttle it,
// and the event source retry). A sandbox whose invocation timed out,
// crashed or was cut off is ended, and the next invocation starts a new
// one, as Lambda resets a sandbox after such an invocation.
type rieFunction struct {
	rt        *rieRuntime
	name      string
	bootstrap string
	env       []string
	timeout   time.Duration
	slots     chan struct{}
	log       *slog.Logger

	mu      sync.Mutex
	idle    []*sandbox
	all     map[*sandbox]struct{}
	closed  bool
	figures sandboxFigures
}

var _ invoker = (*rieFunction)(nil)

// errRIE is an answer of the emulator's that is neither the function's
// response nor its error.
var errRIE = errors.New("rie")

// FunctionError is the error a function returned, as Lambda reports it.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Message }

func (f *rieFunction) invoke(ctx context.Context, lc *lambdacontext.LambdaContext, payload []byte) ([]byte, error) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.slots }()
	sb, err := f.take(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("sandbox did not start", "err", err)
		}
		return nil, err
	}
	resp, keep, err := sb.invoke(ctx, lc.AwsRequestID, payload, f.timeout)
	f.put(sb, keep)
	if errors.Is(err, errRIE) && ctx.Err() == nil {
		// Neither the function's answer nor its error: the caller sees a
		// failed invocation, the log says why.
		f.log.Warn("sandbox failed", "err", err)
	}
	if errors.Is(err, ErrTimedOut) {
		f.mu.Lock()
		f.figures.timeouts++
		f.mu.Unlock()
		return nil, timedOut(f.timeout)
	}
	return resp, err
}

// take is an idle sandbox, or a new one.
func (f *rieFunction) take(ctx context.Context) (*sandbox, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: stopped", errRIE, f.name)
	}
	if n := len(f.idle); n > 0 {
		sb := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return sb, nil
	}
	f.mu.Unlock()
	var sb *sandbox
	var err error
	for range 3 { // a free port another process took meanwhile
		if sb, err = f.start(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		sb.kill()
		return nil, fmt.Errorf("%w: %s: stopped", errRIE, f.name)
	}
	if f.all == nil {
		f.all = map[*sandbox]struct{}{}
	}
	f.all[sb] = struct{}{}
	f.figures.coldStarts++
	f.figures.peak = max(f.figures.peak, len(f.all))
	return sb, nil
}

// put gives sb back for the next invocation, or ends it.
func (f *rieFunction) put(sb *sandbox, keep bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keep && !f.closed {
		f.idle = append(f.idle, sb)
		return
	}
	delete(f.all, sb)
	go sb.kill()
}

func (f *rieFunction) close() {
	f.mu.Lock()
	f.closed = true
	all := make([]*sandbox, 0, len(f.all))
	for sb := range f.all {
		all = append(all, sb)
	}
	f.all, f.idle = nil, nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, sb := range all {
		wg.Go(sb.kill)
	}
	wg.Wait()
}

// sandbox is one aws-lambda-rie process and the bootstrap it runs.
type sandbox struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client
}

// start starts a sandbox: the RIE on two free loopback ports, its invoke
// API and the Runtime API the bootstrap polls (AWS_LAMBDA_RUNTIME_API,
// which the RIE sets). The RIE starts the bootstrap at the first
// invocation, as Lambda initialises a sandbox on demand.
func (f *rieFunction) start(ctx context.Context) (*sandbox, error) {
	ports, err := f.rt.reservePorts(2)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errRIE, f.name, err)
	}
	release := func() { f.rt.releasePorts(ports) }
	invokeAddr, runtimeAddr := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	cmd := exec.Command(f.rt.binary, "--log-level", "error",
		"--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", runtimeAddr, f.bootstrap)
	cmd.Env = f.env
	cmd.Dir = filepath.Dir(f.bootstrap)
	cmd.SysProcAttr = sandboxProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		release()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		release()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		release()
		return nil, fmt.Errorf("%w: %s: start %s: %w", errRIE, f.name, f.rt.binary, err)
	}
	sb := &sandbox{
		url: "http://" + invokeAddr + "/2015-03-31/functions/function/invocations", cmd: cmd, exited: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}},
	}
	var logs sync.WaitGroup
	logs.Go(func() { f.readOutput(stdout) })
	logs.Go(func() { f.readEmulatorLog(stderr) })
	go func() {
		logs.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		release()
		close(sb.exited)
	}()
	// Up once its invoke API takes connections; an emulator exits at once
	// when a port was taken meanwhile.
	for wait := time.Millisecond; ; wait = min(2*wait, 20*time.Millisecond) {
		if c, err := net.DialTimeout("tcp", invokeAddr, time.Second); err == nil {
			c.Close()
			return sb, nil
		}
		select {
		case <-sb.exited:
			return nil, fmt.Errorf("%w: %s: the emulator exited as it started: %s", errRIE, f.name, cmd.ProcessState)
		case <-ctx.Done():
			sb.kill()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// invoke posts one invocation to the sandbox's emulator. keep says whether
// the sandbox can take the next: not after a timeout, a crash, or a cut.
func (sb *sandbox) invoke(ctx context.Context, requestID string, payload []byte, timeout time.Duration) (_ []byte, keep bool, _ error) {
	// The emulator answers at the timeout itself; past it and some slack,
	// it is taken as stuck.
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sb.url, bytes.NewReader(payload))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Amzn-RequestId", requestID)
	resp, err := sb.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: invoke: %w", errRIE, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, false, fmt.Errorf("%w: read the answer: %w", errRIE, err)
	}
	// The emulator answers a timed-out invocation with 200 and Lambda's
	// message, as plain text (a response is JSON).
	if bytes.HasPrefix(body, []byte("Task timed out after ")) {
		return nil, false, ErrTimedOut
	}
	if resp.StatusCode != http.StatusOK {
		// The runtime exited or failed to start: Runtime.ExitError and the like.
		var fe FunctionError
		if json.Unmarshal(body, &fe) == nil && fe.Type != "" {
			return nil, false, &fe
		}
		return nil, false, fmt.Errorf("%w: invoke: %s: %s", errRIE, resp.Status, bytes.TrimSpace(body))
	}
	// A function's error comes back with 200 too, as Lambda's error
	// document (the emulator sets no X-Amz-Function-Error header): an
	// answer with exactly its fields is taken for one.
	if fe, ok := functionError(body); ok {
		return nil, true, fe
	}
	return body, true, nil
}

// functionError decodes Lambda's error document: errorType and
// errorMessage, and perhaps stackTrace, nothing else.
func functionError(body []byte) (*FunctionError, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || !bytes.Contains(body, []byte(`"errorType"`)) {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil, false
	}
	for k := range fields {
		if k != "errorType" && k != "errorMessage" && k != "stackTrace" {
			return nil, false
		}
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) != nil {
		return nil, false
	}
	return &fe, true
}

// kill ends the emulator and the bootstrap it started (its process group),
// and waits for them.
func (sb *sandbox) kill() {
	killGroup(sb.cmd.Process.Pid)
	<-sb.exited
	sb.client.CloseIdleConnections()
}

// reservePorts picks n free loopback ports that no sandbox of the stack
// holds: a port the system just gave one sandbox's emulator may not be
// bound yet when another asks, and an invocation posted to another
// sandbox's Runtime API would fail.
func (rt *rieRuntime) reservePorts(n int) ([]string, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.ports == nil {
		rt.ports = map[string]bool{}
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for len(out) < n && len(lns) < n+100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		if p := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port); !rt.ports[p] {
			out = append(out, p)
		}
	}
	if len(out) < n {
		return nil, errors.New("no free port")
	}
	for _, p := range out {
		rt.ports[p] = true
	}
	return out, nil
}

func (rt *rieRuntime) releasePorts(ports []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, p := range ports {
		delete(rt.ports, p)
	}
}

// readOutput reads a sandbox's standard output: the emulator's START, END
// and REPORT lines, whose figures it counts, and what the bootstrap
// logged, which goes to the stack's log at the level the line gives.
func (f *rieFunction) readOutput(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "REPORT RequestId: "):
			rep, ok := parseReport(line)
			if !ok {
				continue
			}
			f.mu.Lock()
			f.figures.add(rep, first)
			f.mu.Unlock()
			if first && rep.init >= 0 {
				f.log.Info("cold start", "init_ms", rep.init, "first_invocation_ms", rep.duration)
			}
			first = false
		case strings.HasPrefix(line, "START RequestId: "), strings.HasPrefix(line, "END RequestId: "):
		default:
			f.log.Log(context.Background(), lineLevel(line), "function log", "line", line)
		}
	}
}

// readEmulatorLog passes on what the emulator itself logs (at error level:
// an invocation that failed, a runtime that exited).
func (f *rieFunction) readEmulatorLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f.log.Info("emulator log", "line", sc.Text())
	}
}

// lineLevel is the level of a bootstrap's JSON log line (Lambda's
// AWS_LAMBDA_LOG_FORMAT=JSON), info for any other line.
func lineLevel(line string) slog.Level {
	var l struct{ Level string }
	if json.Unmarshal([]byte(line), &l) == nil {
		var lv slog.Level
		if lv.UnmarshalText([]byte(l.Level)) == nil {
			return lv
		}
	}
	return slog.LevelInfo
}
