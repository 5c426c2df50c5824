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
	"os"
	"strings"

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
		{"bench", "measure switches, creation and memory of coroutines, goroutines, threads and processes", runBench},
		{"help", "print this help", nil},
	}
}

// errUsage marks an error that was caused by the command line: the exit
// status is 2, and the message says what is wrong (a flag error also prints
// the command's flags).
var errUsage = errors.New("usage")

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
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(rest, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "weave %s: %v\n", name, err)
			return 2
		}
		fmt.Fprintf(stderr, "weave %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "weave: unknown command %q\n\n", name)
	usage(stderr)
	return 2
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
// and reports errors instead of exiting.
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
		fmt.Fprintf(stderr, "Usage: weave %s %s\n\n%s.\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs, turning a flag error into a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
