package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"votes/infra/local"
)

// useDataDir makes this process's emulator keep its state in dir. kumo
// reads KUMO_DATA_DIR once, when the process starts, so a votes dev
// started without it runs itself again with it (the same process, by
// exec). It then locks dir for as long as it runs: two stacks writing one
// directory would overwrite each other's snapshots.
func useDataDir(dir string) (unlock func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, usageError{fmt.Errorf("--data %s: %w", dir, err)}
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	if os.Getenv("KUMO_DATA_DIR") != abs {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("--data: find this program to run it again with KUMO_DATA_DIR: %w", err)
		}
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "KUMO_DATA_DIR=") })
		env = append(env, "KUMO_DATA_DIR="+abs)
		return nil, fmt.Errorf("--data: run again with KUMO_DATA_DIR: %w", syscall.Exec(exe, os.Args, env))
	}
	path := filepath.Join(abs, "votes-dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, usageError{fmt.Errorf("--data %s is in use by another votes dev (pid %s): stop it first, or give this one another directory", abs, strings.TrimSpace(string(holder)))}
		}
		return nil, fmt.Errorf("--data: lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// checkAWSAddr refuses, before anything starts, an emulator address that
// is in use.
func checkAWSAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return usageError{fmt.Errorf("--aws-addr %q: want host:port, as 127.0.0.1:4566", addr)}
	} else if port == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return awsAddrTaken(addr)
	}
	if err == nil {
		ln.Close()
	}
	return nil
}

func awsAddrTaken(addr string) error {
	holder := "another program (LocalStack, DynamoDB Local or another emulator?)"
	_, port, _ := net.SplitHostPort(addr)
	for _, s := range runningStacks() {
		if _, p, err := net.SplitHostPort(strings.TrimPrefix(s.Endpoint, "http://")); err == nil && p == port {
			holder = fmt.Sprintf("the votes dev stack %q (pid %d)", s.Name, s.PID)
		}
	}
	return usageError{fmt.Errorf("--aws-addr %s is in use by %s: give this stack another --aws-addr, or leave it out for a free port", addr, holder)}
}

// printRestored says what votes dev found in its data directory.
func printRestored(w io.Writer, dir string, r local.Restored) {
	switch {
	case r.Events == 0:
		fmt.Fprintf(w, "data in %s: tables, queues and stream position are kept there across restarts\n", dir)
	case r.Replayed:
		fmt.Fprintf(w, "data in %s: %d events restored; the last run did not stop cleanly, so the projector folds them all again (exact: it is idempotent)\n", dir, r.Events)
	default:
		fmt.Fprintf(w, "data in %s: %d events restored after a clean stop; the tallies are as they were\n", dir, r.Events)
	}
}
