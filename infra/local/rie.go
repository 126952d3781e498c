package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"votes/infra/functions"
)

// The runtimes a stack can run its functions in (Config.Runtime).
const (
	// RuntimeInProcess calls each handler in this process, through
	// aws-lambda-go's handler wrapper: the default, and the quickest.
	RuntimeInProcess = "inproc"
	// RuntimeRIE runs each function as its own bootstrap process under
	// AWS's Lambda Runtime Interface Emulator (aws-lambda-rie), one
	// emulator process per sandbox, invoked over its HTTP invoke API with
	// the real event JSON: cold starts, process isolation and an
	// invocation killed at its timeout, as in Lambda.
	RuntimeRIE = "rie"
)

// RIEVersion is the version of github.com/aws/aws-lambda-runtime-interface-emulator
// the Makefile's rie target installs; a test holds the two together.
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

// RIEModule is the Go module of the Runtime Interface Emulator's command.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// ErrNoRIE is the error of a RIE runtime that finds no aws-lambda-rie
// executable.
var ErrNoRIE = errors.New("aws-lambda-rie not found (make rie installs it)")

// RIEConfig says where the RIE runtime finds its parts; zero fields take
// their defaults.
type RIEConfig struct {
	// Binary is the aws-lambda-rie executable; empty looks it up in PATH,
	// then in the go command's GOBIN or GOPATH/bin.
	Binary string
	// Source is the votes module's directory, which the bootstraps are
	// built from; empty is the module the working directory is in.
	Source string
	// Cache is the directory the bootstraps are built into; empty is the
	// user's cache directory's votes/bootstraps.
	Cache string
	// Bootstraps, when set, are the executables to run instead of building
	// the functions', by function name: tests run fixtures through it.
	Bootstraps map[string]string
}

// checkRuntime checks cfg.Runtime and what goes with it: the functions run
// in other processes, so what would have to reach into their SDK calls
// cannot. (Retryer still applies to the stack's own clients and to the
// event-source mappings', which stay in this process, as Lambda's do.)
func (cfg Config) checkRuntime() error {
	switch cfg.Runtime {
	case "", RuntimeInProcess:
		return nil
	case RuntimeRIE:
	default:
		return fmt.Errorf("local: runtime %q is neither %q nor %q", cfg.Runtime, RuntimeInProcess, RuntimeRIE)
	}
	switch {
	case runtime.GOOS != "linux":
		return errors.New("local: the rie runtime runs Lambda bootstraps, which need Linux")
	case cfg.Faults != nil:
		return errors.New("local: faults are injected into the functions' SDK calls in this process; the rie runtime runs them in their own")
	case len(cfg.APIOptions) > 0 || cfg.FunctionAPIOptions != nil:
		return errors.New("local: API options reach the functions' SDK clients in this process; the rie runtime runs them in their own")
	case cfg.Ingest == IngestURL && cfg.Authorizer != nil:
		return errors.New("local: behind its URL the receiver fetches the issuer's keys itself, which the local authorizer's key cannot give a bootstrap; use the rie runtime with ingest api")
	}
	for _, name := range functions.Names() {
		if t := cfg.Settings.Timeouts[name]; t%time.Second != 0 {
			return fmt.Errorf("local: function %s's timeout %s: the rie runtime counts timeouts in whole seconds, as Lambda does", name, t)
		}
	}
	return nil
}

// BuildBootstraps builds every function's bootstrap from the module in
// source, for this machine's architecture, into a directory of dir's of
// that source's own (dir/SOURCE-HASH/linux-ARCH/NAME), and returns their
// paths by function name. They are built as the Makefile builds the zips
// (GoLambdaFlags, GoLambdaEnv): static, without the RPC shim. Each is
// built aside and renamed into place, so that stacks and tests building
// at once from one checkout never run a binary half written, and those of
// another checkout never run this one's.
func BuildBootstraps(ctx context.Context, source, dir string) (map[string]string, error) {
	abs, err := filepath.Abs(source)
	if err != nil {
		return nil, fmt.Errorf("rie: bootstraps: %w", err)
	}
	key := sha256.Sum256([]byte(abs))
	out := filepath.Join(dir, hex.EncodeToString(key[:6]), "linux-"+runtime.GOARCH)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("rie: bootstraps: %w", err)
	}
	aside, err := os.MkdirTemp(out, ".build-")
	if err != nil {
		return nil, fmt.Errorf("rie: bootstraps: %w", err)
	}
	defer os.RemoveAll(aside)
	args := append([]string{"build"}, GoLambdaFlags...)
	args = append(args, "-o", aside+string(filepath.Separator))
	for _, name := range functions.Names() {
		args = append(args, "./cmd/"+name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), GoLambdaEnv(runtime.GOARCH)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rie: build the bootstraps in %s: %w\n%s", abs, err, msg)
	}
	paths := map[string]string{}
	for _, name := range functions.Names() {
		paths[name] = filepath.Join(out, name)
		if err := os.Rename(filepath.Join(aside, name), paths[name]); err != nil {
			return nil, fmt.Errorf("rie: bootstraps: %w", err)
		}
	}
	return paths, nil
}

// GoLambdaFlags are go build's flags for a Lambda bootstrap, and
// GoLambdaEnv its environment: the Makefile's GO_LAMBDA, which a test holds
// to these.
var GoLambdaFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w -buildid="}

// GoLambdaEnv is the environment go build takes for a bootstrap for arch.
func GoLambdaEnv(arch string) []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}
}

// findRIE is the aws-lambda-rie executable: bin when given, else the one
// in PATH, else the one go install put in GOBIN or GOPATH/bin.
func findRIE(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("rie: %w: %w", ErrNoRIE, err)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	for _, v := range []string{"GOBIN", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			continue
		}
		if v == "GOPATH" {
			dir = filepath.Join(filepath.SplitList(dir)[0], "bin")
		}
		if p := filepath.Join(dir, "aws-lambda-rie"); isExecutable(p) {
			return p, nil
		}
	}
	return "", ErrNoRIE
}

// FindRIE reports where the RIE runtime would find aws-lambda-rie, or
// ErrNoRIE.
func FindRIE() (string, error) { return findRIE("") }

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// moduleDir is the directory of the go.mod the working directory is in,
// when that module is votes.
func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("rie: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("rie: the bootstraps are built from source: run inside the votes checkout")
	}
	b, err := os.ReadFile(gomod)
	if err != nil || !bytes.HasPrefix(b, []byte("module votes\n")) {
		return "", fmt.Errorf("rie: %s is not the votes module: run inside the votes checkout", gomod)
	}
	return filepath.Dir(gomod), nil
}

// rieRuntime runs the stack's functions under the RIE.
type rieRuntime struct {
	binary string
	log    *slog.Logger
	fns    map[string]*rieFunction

	mu    sync.Mutex
	ports map[string]bool // held by the sandboxes alive
}

// startRIE finds the emulator, builds the bootstraps (unless given) and
// prepares each function's sandboxes, with the environment serverless.yml
// gives it. No process starts before the first invocation.
func (s *Stack) startRIE(ctx context.Context, cfg Config, fc functions.Config) (*rieRuntime, error) {
	bin, err := findRIE(cfg.RIE.Binary)
	if err != nil {
		return nil, err
	}
	boots := cfg.RIE.Bootstraps
	if boots == nil {
		src := cfg.RIE.Source
		if src == "" {
			if src, err = moduleDir(); err != nil {
				return nil, err
			}
		}
		cache := cfg.RIE.Cache
		if cache == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				return nil, fmt.Errorf("rie: %w", err)
			}
			cache = filepath.Join(base, "votes", "bootstraps")
		}
		began := time.Now()
		if boots, err = BuildBootstraps(ctx, src, cache); err != nil {
			return nil, err
		}
		cfg.Log.Info("bootstraps built", "dir", filepath.Dir(boots[functions.ReceiverName]), "took", time.Since(began).Round(time.Millisecond))
	}
	// The query function reads its read limits from its own defaults:
	// serverless.yml sets no variable for them.
	def := functions.DefaultConfig().Reads
	s.ReadBound = max(def.MaxAge, def.VersionMaxAge)
	rt := &rieRuntime{binary: bin, log: cfg.Log, fns: map[string]*rieFunction{}}
	for _, name := range functions.Names() {
		boot, ok := boots[name]
		if !ok {
			return nil, fmt.Errorf("rie: no bootstrap for function %s", name)
		}
		rt.fns[name] = &rieFunction{
			rt: rt, name: name, bootstrap: boot, timeout: cfg.Settings.Timeouts[name],
			env:   lambdaEnvironment(name, cfg.Stage, fc, cfg.Settings, s.direct, s.Clients.Config.Region),
			slots: make(chan struct{}, max(cfg.Settings.ReservedConcurrency[name], 1)),
			log:   cfg.Log.With("function", name),
		}
	}
	return rt, nil
}

// lambdaEnvironment is the whole environment of a function's sandbox: what
// serverless.yml sets (provider.environment and the function's own), the
// variables Lambda sets, and the emulator's endpoint. Nothing of this
// process's environment gets through, as nothing of a deployer's does.
func lambdaEnvironment(name, stage string, fc functions.Config, st Settings, endpoint, region string) []string {
	env := map[string]string{
		"VOTES_EVENTS_TABLE":                fc.Tables.Events,
		"VOTES_BALLOTS_TABLE":               fc.Tables.Ballots,
		"VOTES_TALLIES_TABLE":               fc.Tables.Tallies,
		"VOTES_TITLES_TABLE":                fc.Tables.Titles,
		"VOTES_SUBMISSIONS_QUEUE_URL":       fc.SubmissionsURL,
		"VOTES_DEAD_LETTER_QUEUE_URL":       fc.DeadLettersURL,
		"VOTES_PROJECTOR_FAILURE_QUEUE_URL": fc.FailuresURL,
		"VOTES_REPAIR_FAILED_QUEUE_URL":     fc.RepairFailedURL,
		"VOTES_CATALOG":                     fc.Catalog.String(),
		"VOTES_REPAIR_MAX_RECEIVES":         strconv.Itoa(fc.RepairMaxReceives),
		"VOTES_CONCURRENCY":                 strconv.Itoa(fc.Concurrency),
		"AWS_LAMBDA_LOG_FORMAT":             "JSON",
		// Where the functions' SDK clients go, with any key: the
		// emulator's own listener, as the in-process functions' do, not
		// the front that rewrites queue URLs for callers outside.
		"VOTES_AWS_ENDPOINT":    endpoint,
		"AWS_REGION":            region,
		"AWS_DEFAULT_REGION":    region,
		"AWS_ACCESS_KEY_ID":     "local",
		"AWS_SECRET_ACCESS_KEY": "local",
		// What Lambda sets, and the RIE reads: the timeout it cuts an
		// invocation off at, and the memory its REPORT line names.
		"AWS_LAMBDA_FUNCTION_NAME":        "votes-" + stage + "-" + name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(int(st.Timeouts[name] / time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(st.MemoryMB[name]),
		"TZ":                              ":UTC",
	}
	if name == functions.ProcessorName {
		env["VOTES_RETRY_FAILING_FOR"] = fc.Retry.Failing.String()
		env["VOTES_RETRY_NEWER_SCHEMA_FOR"] = fc.Retry.NewerSchema.String()
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// function is the stack's Function for name, run under the RIE.
func (rt *rieRuntime) function(name string) *Function {
	f := rt.fns[name]
	return &Function{name: name, timeout: f.timeout, run: f}
}

// close ends every sandbox.
func (rt *rieRuntime) close() {
	if rt == nil {
		return
	}
	for _, f := range rt.fns {
		f.close()
	}
}

// reports are each function's figures so far, by name.
func (rt *rieRuntime) reports() map[string]SandboxReport {
	if rt == nil {
		return nil
	}
	out := map[string]SandboxReport{}
	for name, f := range rt.fns {
		out[name] = f.report()
	}
	return out
}

// Sandboxes reports, by function, the sandboxes the rie runtime started
// and the durations its REPORT lines gave; nil in process.
func (s *Stack) Sandboxes() map[string]SandboxReport { return s.rie.reports() }

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

// report is what a REPORT line says; init is -1 when it names no Init
// Duration.
type report struct{ init, duration float64 }

// parseReport reads the emulator's REPORT line: tab-separated "Name: value
// ms" fields, "Init Duration" on a sandbox's first invocation only.
func parseReport(line string) (report, bool) {
	rep := report{init: -1, duration: -1}
	for field := range strings.SplitSeq(line, "\t") {
		name, value, ok := strings.Cut(field, ": ")
		if !ok {
			continue
		}
		ms, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " ms"), 64)
		switch {
		case err != nil:
		case name == "Init Duration":
			rep.init = ms
		case name == "Duration":
			rep.duration = ms
		}
	}
	return rep, rep.duration >= 0
}

// SandboxReport is what a function's sandboxes did under the rie runtime.
type SandboxReport struct {
	// ColdStarts counts the sandboxes started (each a new emulator and
	// bootstrap process); Peak is the most alive at once.
	ColdStarts, Peak int
	// Timeouts counts the invocations cut off at the function's timeout.
	Timeouts int
	// Init is the emulator's Init Duration of each cold start, and First
	// the Duration of the invocation that started the sandbox: the
	// emulator starts the bootstrap and returns before the runtime is up,
	// so the start's cost shows in First. Warm are the Durations of the
	// other invocations. Durations are the REPORT lines'.
	Init, First, Warm Durations
}

// Durations summarise a set of durations, in milliseconds.
type Durations struct {
	Count         int
	P50, P99, Max float64
}

// sandboxFigures collect a function's REPORT lines.
type sandboxFigures struct {
	coldStarts, peak, timeouts int
	init, first, warm          histogram
}

func (s *sandboxFigures) add(rep report, first bool) {
	if first {
		s.first.add(rep.duration)
		if rep.init >= 0 {
			s.init.add(rep.init)
		}
		return
	}
	s.warm.add(rep.duration)
}

func (f *rieFunction) report() SandboxReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.figures
	return SandboxReport{ColdStarts: s.coldStarts, Peak: s.peak, Timeouts: s.timeouts,
		Init: s.init.durations(), First: s.first.durations(), Warm: s.warm.durations()}
}

// histogram counts milliseconds in buckets 2% wide, so that a stack up for
// days keeps a few kilobytes per function, not every duration.
type histogram struct {
	counts map[int]int
	n      int
	max    float64
}

const bucketBase = 1.02

func (h *histogram) add(ms float64) {
	if h.counts == nil {
		h.counts = map[int]int{}
	}
	b := 0
	if ms > 0.01 {
		b = int(math.Ceil(math.Log(ms/0.01) / math.Log(bucketBase)))
	}
	h.counts[b]++
	h.n++
	h.max = max(h.max, ms)
}

// durations are the histogram's count, percentiles (each the upper bound
// of its bucket, at most the largest seen) and largest.
func (h *histogram) durations() Durations {
	if h.n == 0 {
		return Durations{}
	}
	buckets := make([]int, 0, len(h.counts))
	for b := range h.counts {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	at := func(q float64) float64 {
		rank := int(math.Ceil(q * float64(h.n)))
		seen := 0
		for _, b := range buckets {
			if seen += h.counts[b]; seen >= rank {
				return min(0.01*math.Pow(bucketBase, float64(b)), h.max)
			}
		}
		return h.max
	}
	return Durations{Count: h.n, P50: at(0.50), P99: at(0.99), Max: h.max}
}
