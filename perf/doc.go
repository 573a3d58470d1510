// Package perf measures Kraft clusters: the physical floor of the machine
// (fdatasync latency of a 4 KiB write in the data directory, loopback
// round-trip time), closed-loop client load with latency percentiles, and
// local clusters of real kraftd processes to run it against. cmd/kraftbench
// is its command line; results live in perf/results/.
//
// The floor is measured in the same run as the load, because this kind of
// machine is shared and noisy: a commit cannot be faster than one fdatasync
// on the leader plus a round trip to a follower that also syncs, so one
// client's commit latency is compared with fdatasync + 2 × RTT.
package perf
