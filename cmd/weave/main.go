// Command weave runs weave's demonstrations and measurements.
//
// Usage:
//
//	weave <command> [flags]
//
// Run "weave help" for the list of commands; each one prints its own flags
// with -h.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/weavert/weave/proc"
)

// A command is one subcommand. The list below is the single source of the
// usage text.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is set in init because the commands' flag sets read it back.
var commands []command

func init() {
	commands = []command{
		{"demo", "the tour: processes, threads and coroutines at work, live", runDemo},
		{"bench", "measure switches, creation and memory of coroutines, goroutines, threads and processes, and an echo server", runBench},
		{"version", "print weave's version: its module, the commit it was built from, and Go's", runVersion},
		{"help", "print this help, or with a command's name, that command's flags", nil},
	}
}

// usageError is an error caused by the command line: the exit status is 2,
// and the message says what is wrong. If flags is set, the flags themselves
// were wrong, and their usage follows the message.
type usageError struct {
	err   error
	flags *flag.FlagSet
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError that says what is wrong.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func main() {
	proc.Main() // in a child that weave started, run its entry point and exit
	os.Exit(weave(os.Args[1:], os.Stdout, os.Stderr))
}

// weave runs the command line args and returns the exit status.
func weave(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	flagsOut := stderr // where the command prints its flags for -h
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 || rest[0] == "help" {
			usage(stdout)
			return 0
		}
		// The command's own -h, on stdout: it was asked for.
		name, rest, flagsOut = rest[0], []string{"-h"}, stdout
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(rest, stdout, flagsOut)
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		// "weave bench: " already names the command: an error of package
		// bench would otherwise read "weave bench: bench: ...".
		fmt.Fprintf(stderr, "weave %s: %s\n", name, strings.TrimPrefix(err.Error(), name+": "))
		if !errors.As(err, &ue) {
			return 1
		}
		if ue.flags != nil {
			fmt.Fprintln(stderr)
			ue.flags.Usage()
		}
		return 2
	}
	fmt.Fprintf(stderr, "weave: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// runVersion prints the module's version, the commit it was built from when
// the build recorded one, and the Go version and platform.
func runVersion(args []string, stdout, stderr io.Writer) error {
	if err := parse(flags("version", "", stderr), args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, version())
	return err
}

// version reads like "weave v0.3.0, commit 0392c2ed1f2a of
// 2025-06-01T12:00:00Z, go1.26.8 linux/amd64"; a build from a checkout is
// "(devel)", and one from a checkout with changes says "modified".
func version() string {
	v, goVersion := "(devel)", runtime.Version()
	var rev, when string
	modified := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	s := "weave " + v
	if rev != "" {
		s += ", commit " + rev[:min(12, len(rev))]
		if when != "" {
			s += " of " + when
		}
		if modified {
			s += ", modified"
		}
	}
	return s + ", " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("weave: coroutines, threads and processes as one runtime.\n\nUsage:\n\n\tweave <command> [flags]\n\nCommands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t%-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun \"weave <command> -h\" for a command's flags.\n")
	io.WriteString(w, b.String())
}

// flags returns a flag set for a subcommand that writes its usage to stderr
// and reports errors instead of exiting (see parse).
func flags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	summary := ""
	for _, c := range commands {
		if c.name == name {
			summary = c.summary
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: weave %s %s\n\n%s.\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs. The flag package would print an error and the
// usage itself, and the command the error again: it prints nothing here, and
// a flag error becomes a usageError, which the command prints once, followed
// by the usage. -h prints the usage and returns flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return &usageError{err: err, flags: fs}
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// seconds is a duration flag that also takes a bare number, of seconds.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		*s = seconds(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("give seconds (3, 0.5) or a duration with its unit (3s, 500ms, 2m)")
	}
	*s = seconds(d)
	return nil
}
