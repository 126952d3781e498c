package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// devState is what a running votes dev leaves for other commands to find
// it: one file per stack, named after the stack, in stacksDir.
type devState struct {
	Name     string    `json:"name"`
	Endpoint string    `json:"endpoint"`
	API      string    `json:"api"`
	Stage    string    `json:"stage"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Catalog  string    `json:"catalog,omitempty"` // as VOTES_CATALOG reads it, for votes load
}

// stacksDir holds one entry per running votes dev.
func stacksDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "votes", "stacks")
}

var validStackName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkStackName(name string) error {
	if !validStackName.MatchString(name) {
		return usageError{fmt.Errorf("--name %q: want letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit", name)}
	}
	return nil
}

// stackNameFor is a stack's name when none is given: its API's port, as in
// "8080".
func stackNameFor(api string) string {
	if u, err := url.Parse(api); err == nil && u.Port() != "" {
		return u.Port()
	}
	return "dev"
}

func stackPath(name string) string { return filepath.Join(stacksDir(), name+".json") }

// errStackExists is a registration under a name a live stack holds.
var errStackExists = errors.New("a stack of that name is running")

// registerStack writes s's entry, atomically (readers see all of it or
// none) and exclusively: it fails with errStackExists while a live stack
// holds the name, and replaces the entry of a dead one. The returned func
// removes the entry, unless it is no longer s's.
func registerStack(s devState) (unregister func(), err error) {
	dir := stacksDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	path := stackPath(s.Name)
	for range 2 {
		// A hard link appears whole, and not over an existing entry.
		if err = os.Link(tmp.Name(), path); !errors.Is(err, os.ErrExist) {
			break
		}
		if old, ok := readStack(path); ok && alive(old) {
			return nil, fmt.Errorf("%w: %q at %s (pid %d)", errStackExists, old.Name, old.API, old.PID)
		}
		os.Remove(path) // a dead stack's
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if cur, ok := readStack(path); ok && cur.PID == s.PID && cur.Started.Equal(s.Started) {
			os.Remove(path)
		}
	}, nil
}

func readStack(path string) (devState, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return devState{}, false
	}
	var s devState
	if json.Unmarshal(b, &s) != nil || s.Name == "" {
		return devState{}, false
	}
	return s, true
}

// alive reports whether the process that wrote s still runs and nothing
// says its address was given up: a refused connection means nobody
// listens there (a process that reused the PID); a slow one is a busy
// stack, still alive.
func alive(s devState) bool {
	if s.PID <= 0 || syscall.Kill(s.PID, 0) == syscall.ESRCH {
		return false
	}
	u, err := url.Parse(s.API)
	if err != nil || u.Host == "" {
		return false
	}
	conn, err := net.DialTimeout("tcp", u.Host, 500*time.Millisecond)
	if err != nil {
		return !errors.Is(err, syscall.ECONNREFUSED)
	}
	conn.Close()
	return true
}

// runningStacks lists the live stacks by name, and removes the entries of
// dead ones.
func runningStacks() []devState {
	paths, _ := filepath.Glob(filepath.Join(stacksDir(), "*.json"))
	var live []devState
	for _, p := range paths {
		s, ok := readStack(p)
		if !ok {
			continue
		}
		if !alive(s) {
			os.Remove(p)
			continue
		}
		live = append(live, s)
	}
	slices.SortFunc(live, func(a, b devState) int { return strings.Compare(a.Name, b.Name) })
	return live
}

// errNoStack is a command that needs a stack, with none running and no
// other target given.
var errNoStack = errors.New("no votes dev is running here")

// pickStack is the stack named name, or with no name the only one
// running. With several and no name it refuses, listing them.
func pickStack(name string) (devState, error) {
	live := runningStacks()
	if name != "" {
		for _, s := range live {
			if s.Name == name {
				return s, nil
			}
		}
		if len(live) == 0 {
			return devState{}, usageError{fmt.Errorf("no stack named %q is running: no votes dev is running here", name)}
		}
		return devState{}, usageError{fmt.Errorf("no stack named %q is running; these are:\n%s", name, stackTable(live))}
	}
	switch len(live) {
	case 0:
		return devState{}, errNoStack
	case 1:
		return live[0], nil
	}
	return devState{}, usageError{fmt.Errorf("%d votes dev stacks are running; choose one with --stack NAME:\n%s", len(live), stackTable(live))}
}

func stackTable(stacks []devState) string {
	var b strings.Builder
	writeStacks(&b, stacks)
	return strings.TrimRight(b.String(), "\n")
}

func writeStacks(w io.Writer, stacks []devState) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tAPI\tAWS ENDPOINT\tSTAGE\tSTARTED\tPID")
	for _, s := range stacks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\n", s.Name, s.API, s.Endpoint, s.Stage, s.Started.Local().Format("2006-01-02 15:04:05"), s.PID)
	}
	tw.Flush()
}

// runStacks lists the running votes dev stacks.
func runStacks(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stacks", stderr)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	live := runningStacks()
	if len(live) == 0 {
		fmt.Fprintln(stdout, "no votes dev is running here; start one with: votes dev")
		return nil
	}
	writeStacks(stdout, live)
	return nil
}

// portTaken explains that addr is in use, naming the stack that holds it
// if it is one.
func portTaken(addr string) error {
	holder := "another program"
	_, port, _ := net.SplitHostPort(addr)
	for _, s := range runningStacks() {
		if u, err := url.Parse(s.API); err == nil && u.Port() == port {
			holder = fmt.Sprintf("the votes dev stack %q (pid %d, %s)", s.Name, s.PID, s.API)
		}
	}
	return usageError{fmt.Errorf("%s is in use by %s: run this one on another port with --addr (for example --addr 127.0.0.1:0 for any free port), or stop that one first", addr, holder)}
}

// stackName is the name a votes dev registers under: name, or one from
// its API's address.
func stackName(name, api string) string {
	if name != "" {
		return name
	}
	return stackNameFor(api)
}

// checkDevAddr refuses, before anything starts, a --name that is not
// valid or that a running stack holds, and an address that is in use.
func checkDevAddr(addr, name string) error {
	if name != "" {
		if err := checkStackName(name); err != nil {
			return err
		}
		for _, s := range runningStacks() {
			if s.Name == name {
				return usageError{fmt.Errorf("a stack named %q is already running (%s, pid %d): give this one another --name", name, s.API, s.PID)}
			}
		}
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return nil // any free port; a bad address is the listener's to report
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return portTaken(addr)
	}
	if err == nil {
		ln.Close()
	}
	return nil
}

// registerDev registers a starting votes dev, and says what removes its
// entry. A name a live stack took meanwhile is an error; an entry that
// cannot be written only means other commands will not find the stack.
func registerDev(s devState, log *slog.Logger) (func(), error) {
	s.Name = stackName(s.Name, s.API)
	unregister, err := registerStack(s)
	switch {
	case errors.Is(err, errStackExists):
		return nil, usageError{fmt.Errorf("%w: give this one another --name", err)}
	case err != nil:
		log.Warn("other votes commands will not find this stack", "err", err)
		return func() {}, nil
	}
	return unregister, nil
}
