package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"votes/admin"
)

func runVersions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("versions", stderr)
	tgt := targetFlags(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	a, err := tgt.admin(ctx)
	if err != nil {
		return err
	}
	versions, active, err := a.Versions(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tWRITTEN\tCREATED\tREBUILT\tEVENTS READ\tCELLS\tVOTES COUNTED")
	for _, v := range versions {
		name := v.Name
		if name == active {
			name += " *"
		}
		written := "no"
		if v.Written() {
			written = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", name, v.State, written, stamp(v.Created), stamp(v.Completed), dash(v.Events), v.Cells, v.Votes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "* queries read it. superseded: kept and written, votes rollback brings it back. retired: items deleted.")
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// versionCommand parses the flags and the one VERSION of a command that
// acts on a version, and connects to the target.
func versionCommand(ctx context.Context, name string, args []string, stderr io.Writer) (*admin.Admin, string, error) {
	fs := newFlags(name, stderr)
	tgt := targetFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return nil, "", err
	}
	if len(pos) == 0 {
		return nil, "", usageError{errors.New("want one VERSION")}
	}
	if err := noMoreArgs(pos, 1); err != nil {
		return nil, "", err
	}
	a, err := tgt.admin(ctx)
	return a, pos[0], err
}

func runPromote(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, version, err := versionCommand(ctx, "promote", args, stderr)
	if err != nil {
		return err
	}
	prev, err := a.Promote(ctx, version)
	if err != nil {
		return err
	}
	if prev == "" {
		fmt.Fprintf(stdout, "version %s is active\n", version)
		return nil
	}
	fmt.Fprintf(stdout, "version %s is active; version %s is superseded: still written, votes rollback makes it active again; delete it with: votes retire %s\n", version, prev, prev)
	return nil
}

func runRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback", stderr)
	tgt := targetFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{errors.New("takes no VERSION: it goes back to the version the last promotion superseded")}
	}
	a, err := tgt.admin(ctx)
	if err != nil {
		return err
	}
	to, from, err := a.Rollback(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "version %s is active again; version %s is superseded: still written, votes promote %s makes it active again; delete it with: votes retire %s\n", to, from, from, from)
	return nil
}

func runRetire(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, version, err := versionCommand(ctx, "retire", args, stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, -1)
	prog.start("retire v"+version+" (items deleted)", 0)
	n, err := a.Retire(ctx, version, prog.add)
	prog.finish(err == nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "version %s retired: %d items deleted\n", version, n)
	return nil
}

// errDiffers makes verify exit non-zero without an extra message.
var errDiffers = errors.New("tallies differ from the event table")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	tgt := targetFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 1); err != nil {
		return err
	}
	version := ""
	if len(pos) == 1 {
		version = pos[0]
	}
	a, err := tgt.admin(ctx)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, a.EventCount(ctx))
	prog.start("verify", 0)
	res, err := a.Verify(ctx, version, prog.add)
	prog.finish(err == nil)
	if err != nil {
		return err
	}
	for _, d := range res.Differences {
		at := ""
		if !d.At.IsZero() {
			at = " at " + d.At.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s %s %s%s: version %s's %s counts %d, the event table %d\n", d.TitleID, d.Aspect, d.Choice, at, res.Version, d.Projection, d.Got, d.Want)
	}
	fmt.Fprintf(stdout, "version %s: %d titles, %d events, %d differences\n", res.Version, res.Titles, res.Events, len(res.Differences))
	if len(res.Differences) > 0 {
		return errDiffers
	}
	return nil
}
