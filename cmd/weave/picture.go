package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/weavert/weave/inspect"
)

// The text picture of the tree, in the spirit of the design's drawing:
// processes as boxes, a line per thread, and a mark per group of tasks on
// that thread, by state.
//
//	● running   ◍ runnable   ○ parked   · not started

const barWidth = 36

func (d *demo) picture(tree *inspect.Tree, elapsed time.Duration) string {
	var b strings.Builder
	procs, threads, tasks := countTree(tree.Process)
	fmt.Fprintf(&b, "\nweave demo · %.1f s of %v · %d processes · %d threads · %s tasks\n",
		elapsed.Seconds(), d.duration, procs, threads, num(uint64(tasks)))
	fmt.Fprintf(&b, "coroutines (tasks): ● running  ◍ runnable  ○ parked  · not started — each mark a share of a thread's tasks\n")
	d.drawProcess(&b, "parent", tree.Process, "", "│  ")
	for i, c := range tree.Process.Children {
		branch, indent := "├── ", "│    "
		if i == len(tree.Process.Children)-1 {
			branch, indent = "└── ", "     "
		}
		if c.Process == nil {
			fmt.Fprintf(&b, "%s%s · pid %d · %s\n", branch, c.Name, c.PID, c.Error)
			continue
		}
		d.mu.Lock()
		note := ""
		if i < len(d.rounds) && d.rounds[i] > 0 {
			r := d.last[i]
			note = fmt.Sprintf(" · sieve of %d tasks · %d ranges, %s primes (… %d)", r.Chain, d.rounds[i], num(uint64(d.primes[i])), r.Last)
		}
		d.mu.Unlock()
		d.drawProcess(&b, c.Name+note, c.Process, branch, indent)
	}
	return b.String()
}

func (d *demo) drawProcess(b *strings.Builder, title string, p *inspect.Process, branch, indent string) {
	fmt.Fprintf(b, "%s%s · pid %d · %s · %d OS threads · kernel switches %s vol + %s invol\n",
		branch, title, p.PID, mib(p.RSS), p.OSThreads, num(p.Voluntary), num(p.Involuntary))
	for _, s := range p.Schedulers {
		perThread := map[int][]inspect.Task{}
		for _, t := range s.Tasks {
			perThread[t.Thread] = append(perThread[t.Thread], t)
		}
		for _, th := range s.Threads {
			now := "idle"
			if th.OSWait != "" {
				now = "idle in " + th.OSWait // where the kernel has it sleep
			}
			if th.State == "running" {
				now = "▶ " + taskLabel(s, th.Task)
			}
			tid := "-"
			if th.TID != 0 {
				tid = fmt.Sprint(th.TID)
			}
			fmt.Fprintf(b, "%sthread %d tid %-7s %-22.22s %10s switches  %s\n",
				indent, th.Index, tid, now, num(th.Resumes), bar(perThread[th.Index]))
		}
		if waiting := perThread[-1]; len(waiting) > 0 {
			fmt.Fprintf(b, "%s%-58s  %s\n", indent, "not started yet", bar(waiting))
		}
	}
}

func taskLabel(s inspect.Scheduler, id uint64) string {
	for _, t := range s.Tasks {
		if t.ID == id && t.Name != "" {
			return t.Name
		}
	}
	return fmt.Sprintf("task %d", id)
}

// bar draws tasks as at most barWidth marks, each standing for an equal
// share of them, by state, with their number.
func bar(tasks []inspect.Task) string {
	if len(tasks) == 0 {
		return ""
	}
	var running, runnable, parked, fresh int
	for _, t := range tasks {
		switch {
		case t.Thread < 0:
			fresh++
		case t.State == "running":
			running++
		case t.State == "runnable":
			runnable++
		default:
			parked++
		}
	}
	per := (len(tasks) + barWidth - 1) / barWidth
	marks := func(n int, mark string) string {
		if n == 0 {
			return ""
		}
		return strings.Repeat(mark, max(1, n/per))
	}
	return marks(running, "●") + marks(runnable, "◍") + marks(parked, "○") + marks(fresh, "·") +
		fmt.Sprintf(" %s", num(uint64(len(tasks))))
}

// summary makes the design's point with the demo's own numbers: the task
// switches each process made against the kernel's context switches of the
// same processes, all their threads and the scheduler's threads alone.
func (d *demo) summary(end ending, interrupted bool) string {
	tree, elapsed := end.tree, end.elapsed
	var b strings.Builder
	how := "ran"
	if interrupted {
		how = "interrupted after"
	}
	fmt.Fprintf(&b, "\nsummary: %s %.1f s on %d CPUs\n", how, elapsed.Seconds(), runtime.NumCPU())
	fmt.Fprintf(&b, "  %-22s %14s   %-30s %s\n", "", "task", "kernel context switches,", "kernel context switches,")
	fmt.Fprintf(&b, "  %-22s %14s   %-30s %s\n", "process", "switches", "all threads (vol + invol)", "scheduler threads (vol + invol)")
	var all [5]uint64
	row := func(name string, p *inspect.Process) {
		var sw, tv, ti uint64
		for _, sc := range p.Schedulers {
			sw += sc.Switches
			for _, th := range sc.Threads {
				tv, ti = tv+th.Voluntary, ti+th.Involuntary
			}
		}
		fmt.Fprintf(&b, "  %-22s %14s   %-30s %s\n", fmt.Sprintf("%s (pid %d)", name, p.PID), num(sw),
			num(p.Voluntary)+" + "+num(p.Involuntary), num(tv)+" + "+num(ti))
		for i, v := range []uint64{sw, p.Voluntary, p.Involuntary, tv, ti} {
			all[i] += v
		}
	}
	row("parent", tree.Process)
	for _, c := range tree.Process.Children {
		if c.Process == nil {
			fmt.Fprintf(&b, "  %-22s %s\n", c.Name, c.Error)
			continue
		}
		row(c.Name, c.Process)
	}
	fmt.Fprintf(&b, "  %-22s %14s   %-30s %s\n", "all", num(all[0]), num(all[1])+" + "+num(all[2]), num(all[3])+" + "+num(all[4]))
	kernel, threads := all[1]+all[2], all[3]+all[4]
	fmt.Fprintf(&b, "\n%s task switches, each a coroutine switch that never entered the kernel, against %s context switches\n", num(all[0]), num(kernel))
	fmt.Fprintf(&b, "of the kernel in the same processes")
	if kernel > 0 && threads > 0 {
		fmt.Fprintf(&b, " (%.0f to 1), %s of them on the threads that ran the tasks (%.0f to 1)",
			float64(all[0])/float64(kernel), num(threads), float64(all[0])/float64(threads))
	}
	b.WriteString(".\nThe kernel switches a thread when it blocks (voluntary) or when another thread takes its CPU\n(involuntary: here more busy threads than CPUs); between two tasks of a thread it never has to.\n")
	d.mu.Lock()
	for i, r := range d.rounds {
		if r > 0 {
			fmt.Fprintf(&b, "worker-%d: a sieve of %d chained tasks tested %d ranges of %d numbers and found %s primes, passing %s values between tasks.\n",
				i+1, d.last[i].Chain, r, rangeSize, num(uint64(d.primes[i])), num(d.values[i]))
		}
	}
	d.mu.Unlock()
	b.WriteString(idleSummary(end.idle))
	return b.String()
}

func (d *demo) clear() {
	if d.lines > 0 {
		fmt.Fprintf(d.stdout, "\x1b[%dA\x1b[J", d.lines)
		d.lines = 0
	}
}

func countLines(s string) int { return strings.Count(s, "\n") }

func countTree(p *inspect.Process) (procs, threads, tasks int) {
	procs = 1
	for _, s := range p.Schedulers {
		threads += len(s.Threads)
		tasks += len(s.Tasks)
	}
	for _, c := range p.Children {
		if c.Process != nil {
			a, b, c := countTree(c.Process)
			procs, threads, tasks = procs+a, threads+b, tasks+c
		} else {
			procs++
		}
	}
	return procs, threads, tasks
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// num writes n with thousands separated by commas.
func num(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// idleSummary says where the children's scheduler threads sleep once the
// work is over, as the kernel reports it: in each child, one waits in the
// scheduler's epoll poller for the parent's next message.
func idleSummary(idle []childIdle) string {
	if len(idle) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nIdle at the end, the children's scheduler threads sleep here in the kernel (/proc/PID/task/TID/wchan):\n")
	inPoller, all := 0, 0
	for _, c := range idle {
		fmt.Fprintf(&b, "  %-22s", fmt.Sprintf("%s (pid %d)", c.name, c.pid))
		switch {
		case c.err != nil:
			fmt.Fprintf(&b, " %v\n", c.err)
			continue
		case !c.settled:
			b.WriteString(" still busy after a second:")
		}
		for _, th := range c.threads {
			wait := th.wait
			if wait == "" {
				wait = "running"
			}
			fmt.Fprintf(&b, "   thread %d (tid %d) %s", th.index, th.tid, wait)
			all++
			if inEpoll(th.wait) {
				inPoller++
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d of the children's %d scheduler threads idle in epoll_wait: in each child one waits in the scheduler's\n", inPoller, all)
	b.WriteString("poller, where the parent's next message wakes it, and the other on a futex until there is work for two.\n")
	return b.String()
}

// inEpoll reports whether wait, a wait channel, is epoll_wait's: the
// kernel names it do_epoll_wait, or ep_poll in other versions.
func inEpoll(wait string) bool {
	return strings.Contains(wait, "epoll") || strings.Contains(wait, "ep_poll")
}
