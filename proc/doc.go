// Package proc starts, talks to, limits and supervises OS processes: the
// process layer of weave, where each process has its own address space and
// talks to others only by messages. It gives the crash isolation no goroutine
// can: a panic, a segfault in cgo, a memory blow-up or an endless loop in one
// process does not take the others down.
//
// # Entry points and re-execution
//
// A child is normally this same binary, re-executed into a named entry point:
//
//	func init() {
//		proc.Register("worker", func(ctx context.Context, c *proc.Conn) error {
//			for {
//				msg, err := c.Recv()
//				if err == io.EOF {
//					return nil
//				}
//				...
//			}
//		})
//	}
//
//	func main() {
//		proc.Main() // first: in a child, this runs the entry and exits
//		p, err := proc.Start(ctx, proc.Spec{Entry: "worker"})
//		...
//	}
//
// Start executes /proc/self/exe (so a binary replaced on disk still starts
// its own copy) with the Spec's arguments and environment plus one variable,
// WEAVE_PROC_CHILD, that tells Main which entry to run, the frame maximum, the
// limits, the parent's pid and where the parent's standard error is. Main
// removes that variable, starts watching its parent, checks and applies the
// limits, finds the entry, puts the parent's standard error in place and
// sends the parent a first frame, the handshake, before calling the entry.
// Start returns once it has that frame, so an entry name that the child does
// not know is an error from Start wrapping ErrUnknownEntry, which lists the
// names the child does know, and a limit the child cannot run under one
// wrapping ErrLimit — not exit statuses to decode. Under go test the test
// binary re-executes itself the same way: call Register from init or TestMain,
// and proc.Main first in TestMain.
//
// Spec.Path starts any other executable instead, under the same process
// group, Pdeathsig, limits and supervision, but without a Conn.
//
// # Messages
//
// Parent and child talk over a Unix socketpair whose child end is file
// descriptor 3 in the child. A Conn cuts the byte stream into frames: a 4-byte
// big-endian length, then that many bytes. Each end refuses frames larger than
// a maximum (Spec.MaxFrame, DefaultMaxFrame = 16 MiB by default, the same for
// both ends): Send returns an error wrapping ErrFrameTooLarge and sends
// nothing; a peer announcing a larger frame is malformed, and Recv returns that
// error, allocates nothing for the frame and closes the connection. A stream
// that ends inside a frame — a peer killed in the middle of a Send — is an
// error wrapping io.ErrUnexpectedEOF; one that ends between frames is io.EOF.
// On the parent's side, the end of a child's stream also says how the child
// ended: io.EOF itself after an exit with status 0, otherwise an error
// wrapping both io.EOF (or io.ErrUnexpectedEOF) and the child's *ExitError,
// "proc: recv: end of stream: worker (pid 4242): signal: killed". A loop
// that stops on err == io.EOF sees a killed child as an error; one that stops
// on errors.Is(err, io.EOF) sees the end of the stream.
// Nothing a peer sends can panic the receiver or make it allocate more than
// twice what it sent plus 64 KiB, whatever its headers announce: the buffer
// of a message grows as its bytes arrive (FuzzRecv). Recv returns each
// message in a new slice; RecvBuf reads into the caller's buffer. SendJSON,
// RecvJSON, SendGob and RecvGob put types on top; a frame that does not
// decode is an error for that frame only.
//
// Deadlines are net.Conn's: SetReadDeadline, SetWriteDeadline and
// SetDeadline apply to waiting calls and later ones, and a call past its
// deadline fails with an error wrapping os.ErrDeadlineExceeded. No deadline
// puts the stream out of step: a frame that a read deadline cut stays in the
// Conn for the next Recv, and a Send that a write deadline cut in the middle
// of its frame breaks the sending side for good (the peer reads
// io.ErrUnexpectedEOF) rather than leave a half message followed by others.
//
// A Conn's descriptor is non-blocking. A goroutine that must wait blocks its
// thread in ppoll(2) on the descriptor and an eventfd, which a new deadline
// or Close writes to wake it. Rejected: a blocking read(2), which no new
// deadline can interrupt (blocking calls measured 0.94× the speed of a raw
// socketpair for 64-byte round trips here, this 0.85×); and the descriptor in
// Go's netpoller, which holds no thread but adds an epoll wake-up to every
// message — measured at about 0.7×. A parent with thousands of children each
// waited on by a goroutine would want that other choice. The framing is written apart from the
// waiting, as steps that go as far as the descriptor allows and resume where
// they stopped, so that a poller can drive a Conn with no goroutine waiting.
// NewConn puts a Conn over any stream (a net.Conn to another machine, say).
//
// # Lifetimes
//
// A child never outlives its parent, by two mechanisms:
//
//   - Pdeathsig: the kernel signals the child when its parent dies. A child
//     that runs Main (an Entry, or the limits trampoline of a Path until it
//     execs) gets signal 63 (SIGRTMAX−1, which proc reserves in its
//     children: an Entry must not Ignore or Reset it), checks that its
//     parent is really dead or dying, and sends SIGKILL to its whole process
//     group, itself included. Any other program gets SIGKILL. "Parent" means
//     the thread that forked it, not the process (prctl(2)), and the Go
//     runtime may end threads (it does when a goroutine locked to one
//     exits). So every child is forked by one goroutine locked to its own
//     thread, which stays alive while any child it forked is unreaped; with
//     no children left it exits and so does its thread. A Start from a
//     locked thread of the caller's would otherwise signal the child when
//     that thread went away.
//   - End of connection: when the parent's end of the Conn closes because
//     the parent died, the child ends at once with its group, as on the
//     parent-death signal. When it closes while the parent lives — the
//     parent closed or lost its Conn, not the entry closing its own — the
//     child's entry context is cancelled with cause ErrParentGone and its
//     Recv returns io.EOF after the messages already sent; if the entry has
//     not returned a second later, the child prints its goroutines and exits
//     with status 3. Closing the parent's Conn is thus how a parent tells a
//     child to finish. SIGTERM does not start that second: a child being
//     stopped has the whole grace period its parent gives (Stop's, or a
//     Supervisor child's Shutdown).
//
// Every child leads a new process group. Kill sends SIGKILL to the whole
// group, grandchildren included; Stop sends SIGTERM to the group, waits a
// grace period, then kills it. In an Entry, SIGTERM cancels the context with
// cause ErrTerminated and makes Recv return io.EOF once the messages already
// sent have been read, while Send still works: a receive loop ends by itself,
// and may say last words.
//
// When a child exits, whatever it left in its group is killed too: no strays.
// The parent's reaper does it; a parent that was SIGKILLed runs no reaper, so
// a child that runs Main does it itself when its parent dies: on the
// parent-death signal, at the hangup of its connection, and as it exits. What
// can still escape: a descendant that left the group (setsid(2) or
// setpgid(2): a new session or group of its own), though a grandchild started
// with proc, which leads its own group, dies with its parent all the same; the
// descendants of a program started by Path, if the parent is SIGKILLed (the
// program dies of SIGKILL, but no code of proc runs in it to end its group);
// and, if the parent is SIGKILLed in the moment between a child's exit and its
// reaping, what that child left in its group.
//
// Children are reaped in exactly one place: a goroutine per child that waits
// for a pidfd to become readable in the netpoller (holding no thread), marks
// the child exited, kills the rest of its group, and only then reaps it.
// Until it is reaped its pid, which is also its group id, cannot be reused,
// so Kill, Stop and Stat never touch another process. Wait returns the state
// reaped there, as often as it is called; no zombie is left behind once a
// child has exited (TestNoZombies starts and ends 200).
//
// Exit statuses: 0 when the entry returned nil (or its context's error after
// cancellation); 1 when it returned another error, which it prints to its
// standard error; 2 for a panic or a Go fatal error; 3 when it did not
// return after its connection closed; 125 to 127 when it never ran (bad
// handshake variable, a limit that was refused or could not be set, unknown
// entry or failed exec). Wait's error is nil for status 0 and an *ExitError
// otherwise, whose text says how: "proc: worker (pid 4242): signal: killed".
// A child that finds its parent dead kills itself with its group, and leaves
// no status anyone reads.
//
// # Environment and limits
//
// The child's environment is exactly what the Spec says: the parent's
// environment followed by Spec.Env (a later NAME=value wins), or Spec.Env
// alone with CleanEnv. Its working directory is Spec.Dir, its arguments
// Spec.Args. Standard input and output are /dev/null unless given; standard
// error is the parent's unless given. Until its handshake, a child that runs
// Main writes its standard error into a pipe, from which the parent copies it
// to its own and keeps the last 4 KiB: a child that dies before it is ready
// (a runtime that fails under a tight memory limit, say) is reported by
// Start with how it ended and what it last wrote. At the handshake the child
// puts the parent's standard error in place of the pipe, and nothing is
// copied after that. A Stdin that is not a file is copied to the child by a
// goroutine that stops when the child exits, closing Stdin if it is an
// io.Closer to end a Read in progress: the child's end is reported when it
// happens, with its own status, whatever Stdin does. A Stdout or Stderr that
// is not a file is copied as os/exec copies it: Wait waits for the output to
// end, at most a second past the child's exit, and then says
// exec.ErrWaitDelay for a child that exited with status 0 but left its output
// open to a descendant outside its group.
//
// Limits are rlimits, set as soft and hard limit in the child before its
// entry runs: open files (RLIMIT_NOFILE), private memory (RLIMIT_DATA),
// address space (RLIMIT_AS), CPU seconds (RLIMIT_CPU) and processes
// (RLIMIT_NPROC, which the kernel does not apply to root). os/exec runs no
// code between fork and exec, so Main applies them, before anything else;
// for Spec.Path with limits, the child is this binary first and executes the
// Path once the limits are set. Rejected: prlimit(2) on the child after Start
// returns, which lets the child run unlimited for a moment. A child over its
// memory limit dies of "fatal error: out of memory" and nothing else does; one
// over its CPU limit is killed with SIGKILL.
//
// Limits under which a child could not run are refused, with an error from
// Start wrapping ErrLimit that names the limit and says why: fewer than 16
// open files for an Entry (4 for a Path), a negative CPU time, and — checked
// by an Entry child against what it has mapped when Main applies them — a Data
// less than 16 MiB above its VmData, an AddressSpace less than 256 MiB above
// its VmSize, or a Procs less than 16 above what its user (unless root)
// already runs. Limits says why each minimum is what it is.
//
// Cgroups are not used. Only cgroup v2 delegates safely to an unprivileged
// process, and this package's machines have v1 (internal/procfs.CgroupV2
// detects which); rlimits need no privileges and work everywhere.
//
// # Supervision
//
// A Supervisor runs children as Erlang/OTP's supervisor does: OneForOne,
// OneForAll or RestForOne; Permanent, Transient or Temporary children; at
// most MaxRestarts restarts within Period (3 in 5 s by default), and on one
// more it stops every child and Run returns an error wrapping
// ErrTooManyRestarts that names the child and wraps how it failed. Children
// start in order and stop in reverse order, each with SIGTERM, its Shutdown
// grace period, then SIGKILL. Starts, exits, restarts and the giving up are
// logged with log/slog; Supervisor.Started hands each new incarnation to the
// program.
//
// # Stats
//
// Stat and Self read /proc: the live threads (TID, name, state, voluntary
// and involuntary context switches, and, for one that sleeps, where in the
// kernel: its wait channel), resident memory, and the switches summed over
// the threads.
//
// # Costs
//
// Measured by the benchmarks in this package on a shared 2-core AMD EPYC
// virtual machine, with the test binary and its children pinned to one CPU
// (taskset -c 0; unpinned, the ratios swung from 0.4× to 1.1× while other jobs
// ran), go test -bench . -count 5, medians, each beside a baseline measured in
// the same loop; round trips alternate with the baseline in blocks of 64 and
// take the median block:
//
//	Start to first message received     2.54 ms   os/exec start to first byte: 2.16 ms (1.18×)
//	round trip, 64 B, Recv              17.7 µs   raw socketpair, blocking syscalls: 15.1 µs (0.85× its speed)
//	round trip, 64 B, RecvBuf           17.8 µs   raw: 15.2 µs (0.85×)
//	round trip, 64 KiB, RecvBuf         42.5 µs   raw: 31.5 µs (0.74×), 3.1 GB/s both ways
//	round trip, 64 KiB, Recv            54.4 µs   raw: 32.7 µs (0.61×): a fresh 64 KiB slice per message
//	Self, the test binary               165 µs    2 + one per thread /proc files
//
// Since then Self also reads the wait channel of each thread that sleeps, a
// file more for most threads: 1.3× the time of the version above, measured
// alternately on a machine with other jobs (medians of 6, pinned to one CPU).
//
// On the same machine, blocking reads without deadlines measured 0.94× for
// the 64-byte round trip and Start 1.13×: the price of deadlines that reach
// waiting calls is a ppoll(2) per wait, and that of watching a child's start
// and parent the pipe and signal handler that Main sets up.
//
// Send allocates nothing, nor does RecvBuf into a large enough buffer, waits
// included (TestConnAllocs); Recv allocates the message, which for large
// messages costs more than the system calls (zeroing, page faults, garbage
// collection): use RecvBuf with a reused buffer on hot paths. A child costs
// the parent one goroutine, parked in the netpoller, a thread for each
// goroutine blocked in Recv or Send, and four descriptors: its socket, its
// pidfd and, once a call has waited in each direction, an eventfd for each.
package proc
