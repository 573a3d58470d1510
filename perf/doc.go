// Package perf measures Kraft clusters: the physical floor of the machine
// (fdatasync latency of a 4 KiB write in the data directory, loopback
// round-trip time), client load with latency histograms, leader-kill
// recovery, and local clusters of real kraftd processes to run them
// against. cmd/kraftbench is its command line; results live in
// perf/results/.
//
// The floor is measured in the same run as the load, just before each
// measurement, because this kind of machine is shared and noisy: a commit
// cannot be faster than one fdatasync on the leader plus a round trip to a
// follower that also syncs, so latencies are reported next to their ratio
// to fdatasync + 2 × RTT.
//
// # Load
//
// Run drives a Target (ClientTarget: the Go client, workers sharing
// pipelined connections) with a Workload: a read share, read consistency,
// payload size and a key distribution (Uniform, or Zipf with θ < 1 as
// YCSB uses). Two shapes:
//
//   - closed loop: Clients workers each send, wait, send again. Latency is
//     send → answer. A stalled server makes the workers stop sending, so
//     the stall shows up once, not once per request a real user would
//     have sent during it (coordinated omission). Over an AsyncTarget
//     (ClientTarget is one) a client is a state machine instead of a
//     goroutine: the target's callback records the answer and sends the
//     next operation, on the client connection's reader goroutine, which
//     saves two goroutine switches per operation (most of the generator's
//     CPU on a small VM).
//   - open loop: a pacer fixes the intended send times in advance
//     (RatePerSec, evenly spaced or Poisson) and hands each to an idle
//     worker through an unbuffered channel; at most Clients are in flight.
//     When none is idle the operation waits and goes out late; latency is
//     intended time → answer, so the wait is charged. Sends LateAfter or
//     more behind are counted as late; operations still unsent when the
//     window ends are counted as missed and enter the percentiles with the
//     wait they had by then. Nothing is dropped silently.
//
// Goroutines: Run starts the workers (and, in open loop, the pacer on its
// own goroutine; over an AsyncTarget, no goroutine per client) and
// monitors on the caller's: it waits out the warm-up,
// wakes once a second to take the timeline and call Progress, reads the
// CPU time at both ends of the window, then waits for the operations in
// flight. Each worker owns its rand.Rand, key and value buffers.
//
// Besides its own figures a run can read the nodes' counters at both ends
// of its window (LoadConfig.Servers, a Scraper of their admin /metrics):
// CPU, the leader's WAL syncs, snapshots, recycled segments, elections,
// leader changes and refused requests, so a report says what the cluster did
// while it was measured (a snapshot, an election) and not only what the
// load saw.
//
// Latencies go into Histograms: fixed-size (58 KiB), lock-free,
// log-linear with 128 buckets per power of two (percentiles within 0.8 %),
// so an open-loop run at any rate uses bounded memory.
//
// # Reports
//
// Row is one run with its floor and ratios; WriteTable (people),
// encoding/json (machines, field names carry units), WriteMarkdown
// (perf/results files, with date, command, commit and load average) and
// WritePlot (latency and throughput per second as a self-contained HTML
// page of inline SVG).
package perf
