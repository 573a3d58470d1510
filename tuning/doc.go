// Package tuning checks a Linux host against what Kraft needs and, on
// request, applies the recommended settings. Raft is write-heavy and
// sync-heavy: every acknowledged proposal waits for an fdatasync of the WAL
// on a majority of nodes, and replication streams entries and snapshots
// between peers. The settings below decide how fast that path is.
//
// # What it reads
//
//	/proc/self/mountinfo                 which mount holds the data, WAL and
//	                                     snapshot directories (longest mount
//	                                     point that prefixes the resolved dir)
//	/sys/dev/block/MAJ:MIN               the mount's block device, followed
//	  → .../partition                      partition: its parent is the disk
//	  → .../slaves/*                       device-mapper or md: every slave
//	/sys/class/block/NAME                fallback when mountinfo shows an
//	                                     anonymous 0:N device (btrfs)
//	DISK/queue/scheduler                 active scheduler, in brackets
//	DISK/queue/nr_requests               block-layer queue depth
//	DISK/queue/rotational                0 = SSD/NVMe, 1 = spinning
//	DISK/queue/write_cache               "write back" or "write through"
//	/proc/sys/net/core/{rmem,wmem}_max   socket buffer caps
//	/proc/sys/net/ipv4/tcp_{rmem,wmem}   TCP autotuning (third field = max)
//	/proc/sys/net/ipv4/tcp_fastopen      TFO bit mask
//	/sys/kernel/mm/transparent_hugepage/ transparent huge pages: enabled
//	  {enabled,defrag}                     and defrag modes, in brackets
//	prlimit(2) RLIMIT_NOFILE             of this process, or of --pid
//	statfs(2)                            free space of the data directory
//
// Checks and thresholds (constants in types.go):
//
//	disk.scheduler        NVMe: none. SATA/SAS SSD: none, mq-deadline
//	                      acceptable. Rotational: mq-deadline or bfq.
//	disk.nr_requests      >= 256
//	disk.write_cache      informational (always OK when readable)
//	net.core.rmem_max     >= 16 MiB        net.core.wmem_max   >= 16 MiB
//	net.ipv4.tcp_rmem     max >= 16 MiB    net.ipv4.tcp_wmem   max >= 16 MiB
//	net.ipv4.tcp_fastopen bits 1|2 set (3)
//	mem.thp.enabled       always (the Go runtime does not madvise its heap,
//	                      so madvise leaves kraftd on 4 KiB pages)
//	mem.thp.defrag        not always (madvise, defer, defer+madvise, never):
//	                      a page fault never waits for compaction
//	nofile.soft/.hard     >= 65536
//	fs.type               ext4, xfs OK; btrfs/zfs/f2fs OK (slower syncs);
//	                      tmpfs, overlay, network and FUSE filesystems WARN
//	fs.free               >= 8 GiB and >= 10% free
//	layout.wal-snapshots  WAL and snapshots on different disks
//
// A value that cannot be read is CANNOT-READ, never WARN: the tool does not
// guess. Only the disks under the data and WAL directories get disk.* rows;
// the snapshot directory only matters for the layout check.
//
// # What it writes (Apply only)
//
// The same sysfs and procfs files, opened O_WRONLY without O_CREATE, and
// RLIMIT_NOFILE through prlimit(2). Schedulers are written first, because
// switching one resets nr_requests; the checks are then read again. Values
// are only raised, never lowered. Each item fails on its own (not root, a
// read-only /sys in a container, a value the kernel rejects) with a one-line
// reason, and the rest go on. Sysfs and sysctl writes do not survive a
// reboot; docs/tuning.md shows how to persist them.
//
// # Seams
//
// Host carries the roots of /sys and /proc and the functions that touch the
// process or the disk (Statfs, Nofile, WriteFile, Euid), so tests run
// against the trees in testdata/ and apply into temporary copies of them.
// Nothing in this package starts a goroutine; a Host is safe to use from
// one goroutine at a time.
//
// On other operating systems Check and Apply return ErrNotSupported.
package tuning
