package main

import (
	"io"
	"os"
	"regexp"

	"github.com/weavert/weave/bench"
)

// runBench measures switches, creations and memory of each layer, and weave's
// echo server beside Go's, and prints them side by side.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flags("bench", "[--quick] [--json] [--svg FILE] [--only REGEXP] [--pin CPUS] [--tries N]", stderr)
	quick := fs.Bool("quick", false, "few operations per try: a run of seconds, for tests and CI")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	svg := fs.String("svg", "", "also draw the switch and create rows as a bar chart into `FILE`")
	only := fs.String("only", "", "measure only the rows whose names match `REGEXP`")
	pinList := fs.String("pin", "", "run on these `CPUS` only, e.g. 0 or 0-1 (both ends of a switch share them)")
	tries := fs.Int("tries", 11, "timed tries per row (net/idle: 3 at most), after one warm-up; each row reports their median")
	if err := parse(fs, args); err != nil {
		return err
	}
	opt := bench.Options{Quick: *quick, Tries: *tries, Progress: stderr}
	if *tries < 1 {
		return usagef("--tries must be at least 1")
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return usagef("--only: %v", err)
		}
		opt.Only = re
	}
	if *pinList != "" {
		cpus, err := bench.ParseCPUs(*pinList)
		if err != nil {
			return usagef("--pin: %v", err)
		}
		opt.Pin = cpus
	}
	report, err := bench.Run(opt)
	if err != nil {
		return err
	}
	if len(report.Results) == 0 {
		return usagef("--only %q matches no row", *only)
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return err
		}
		if err := bench.WriteSVG(f, report); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *asJSON {
		return bench.WriteJSON(stdout, report)
	}
	return bench.WriteTable(stdout, report)
}
