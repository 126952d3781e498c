package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// runVersion prints the module version and the VCS revision the binary
// was built from, as the go command stamped them.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, versionLine())
	return err
}

func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "votes: no build information (built without module support)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	var revision, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	line := "votes " + version
	if revision == "" {
		line += ", revision unknown (none stamped: built with -buildvcs=false, outside a git checkout, or in a git worktree, whose .git is a file the go command does not follow)"
	} else {
		line += fmt.Sprintf(", revision %s of %s%s", revision, when, modified)
	}
	return line + ", " + info.GoVersion
}
