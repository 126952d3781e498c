package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
