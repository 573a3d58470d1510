#!/usr/bin/env bash
# Restarts a 3-node cluster from the data kraftbench left, with the page
# cache dropped first (a cold restart), and runs 1,024 writers against it;
# then stops it with SIGTERM, as an operator's restart does. It prints what
# the restart cost: start-up time, each node's RssFile after the start,
# Mapped over the run, disk reads and refaults (/proc/vmstat), the WAL
# segments read back and recycled, and kraftbench's figures.
# perf/results/speedups.md, items 66 and 67, were measured with it.
#
#   bin/kraftbench throughput --local 3 --data-dir /tmp/kb-big --duration 2m --warmup 10s \
#       --clients 1024 --payload 128        # once: the fixture (~4 GiB of log per node)
#   scripts/bench-cold-restart.sh base /tmp/kraftd-base /tmp/kb-big
#
# Each run continues the previous one's data. Needs root (drop_caches).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 3 ]; then
  echo "usage: $0 <label> <kraftd binary> <kraftbench --data-dir of a 3-node run>" >&2
  exit 2
fi
label=$1 B=$2 D=$3/n3-p128
[ -d "$D/node1/data" ] || { echo "$D/node1/data: no such directory (make the fixture first)" >&2; exit 2; }
OUT=${OUT:-/tmp}
sync
echo 3 > /proc/sys/vm/drop_caches
peers=1=127.0.0.1:27001,2=127.0.0.1:27011,3=127.0.0.1:27021
pids=()
kept=$(ls "$D"/node*/data/ | grep -c '\.sums$' || true)
t0=$(date +%s.%N)
for i in 1 2 3; do
  p=$((27001 + (i - 1) * 10))
  GOMAXPROCS=1 "$B" --node-id $i --cluster-id kb --bind-address 127.0.0.1 --raft-port $p \
    --client-port $((p + 1)) --admin-port $((p + 2)) --peers $peers \
    --data-dir "$D/node$i/data" --snapshot-dir "$D/node$i/snapshots" > "$OUT/cr-$label-n$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do until grep -q "kraftd started" "$OUT/cr-$label-n$i.log"; do sleep 0.1; done; done
sleep 1
echo "$label: kept checksum files at start: $kept; started in $(echo "$(date +%s.%N) - $t0" | bc) s"
for pid in "${pids[@]}"; do echo -n "$(awk '/RssFile/{print $2}' /proc/$pid/status) "; done
echo " kB RssFile after start"
(while true; do echo "$(date +%s) $(awk '/^MemFree:|^Cached:|^Mapped:/{printf "%s ", $2}' /proc/meminfo)"; sleep 5; done) > "$OUT/cr-$label.mem" &
sampler=$!
cp /proc/vmstat "$OUT/cr-$label.vm0"
bin/kraftbench throughput --endpoints 127.0.0.1:27002,127.0.0.1:27012,127.0.0.1:27022 \
  --admin-endpoints 127.0.0.1:27003,127.0.0.1:27013,127.0.0.1:27023 --cluster-id kb \
  --fsync-mode always --clients 1024 --payload 128 --duration 2m --warmup 10s --quiet --json > "$OUT/cr-$label.json"
cp /proc/vmstat "$OUT/cr-$label.vm1"
echo -n "read back, recycled (per node): "
for a in 27003 27013 27023; do
  curl -s 127.0.0.1:$a/metrics | grep -E '^kraft_wal_segments_(read_back|recycled)_total' | awk '{printf "%s ", $2}'
  echo -n "| "
done
echo
kill $sampler
t1=$(date +%s.%N)
kill "${pids[@]}"
wait "${pids[@]}" 2> /dev/null || true
echo "stopped in $(echo "$(date +%s.%N) - $t1" | bc) s; kept checksum files now: $(ls "$D"/node*/data/ | grep -c '\.sums$' || true); log per node: $(du -sh "$D/node1/data" | cut -f1)"
python3 - "$OUT/cr-$label" << 'PY'
import json, sys
base = sys.argv[1]
d = json.load(open(base + ".json"))
mapped = [int(r.split()[3]) for r in open(base + ".mem") if len(r.split()) >= 4]
print("writes/s %.0f p50 %.2f p99 %.2f p99.9 %.2f max %.1f ms, kraftd CPU %.2f µs/write" % (
    d["ops_per_s"], d["p50_us"] / 1e3, d["p99_us"] / 1e3, d["p999_us"] / 1e3, d.get("max_us", 0) / 1e3, d.get("cpu_us_per_op") or 0))
print("Mapped kB first/max/last", mapped[0], max(mapped), mapped[-1])
vm = lambda f: {l.split()[0]: int(l.split()[1]) for l in open(f)}
a, b = vm(base + ".vm0"), vm(base + ".vm1")
print("disk read %d MB, refaults %d, pgscan_direct %d, pgscan_kswapd %d" % (
    (b["pgpgin"] - a["pgpgin"]) // 1024, b["workingset_refault_file"] - a["workingset_refault_file"],
    b["pgscan_direct"] - a["pgscan_direct"], b["pgscan_kswapd"] - a["pgscan_kswapd"]))
PY
