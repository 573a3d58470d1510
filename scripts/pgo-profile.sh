#!/usr/bin/env bash
# Writes cmd/kraftd/default.pgo, the CPU profile Go's profile-guided
# optimization builds kraftd with (go build picks it up by itself). It runs
# the loads kraftd is measured by (perf/results/cluster.md) against a local
# 3-node cluster and takes a CPU profile of every node during each:
# 1,024 clients writing 128 B (twice: it is the goal cell), 1,024 clients
# reading (linearizable), and an even mix. The profiles are merged, so that
# the leader's and the followers' hot paths are both in it.
# perf/results/speedups.md, item 68, measured what the profile gives.
#
#   make build && scripts/pgo-profile.sh      # or: make pgo
#   PROFILE_SECONDS=20 scripts/pgo-profile.sh  # longer windows
#
# Run it on an otherwise idle machine, with bin/ built from the commit the
# profile is for; commit the new default.pgo with the code it describes.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${PROFILE_SECONDS:-10}
OUT=${PGO_OUT:-cmd/kraftd/default.pgo}
if ! [[ "$SECS" =~ ^[1-9][0-9]*$ ]]; then
  echo "PROFILE_SECONDS must be a positive number of seconds, got '$SECS'" >&2
  exit 2
fi
for b in kraftd kraftbench; do
  [ -x "bin/$b" ] || { echo "bin/$b is missing: run 'make build' first" >&2; exit 1; }
done
command -v curl > /dev/null || { echo "curl is needed to fetch the nodes' profiles" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kraft-pgo.XXXXXX")
pids=()
stop_nodes() {
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2> /dev/null || true
    wait "${pids[@]}" 2> /dev/null || true
  fi
  pids=()
}
trap 'stop_nodes; rm -rf "$work"' EXIT

# Ports away from `make run`'s 7001-7023, so that both can run on one host.
base=27101
peers=""
for i in 1 2 3; do peers+="${peers:+,}$i=127.0.0.1:$((base + 10 * (i - 1)))"; done
clients=""
admins=()
for i in 1 2 3; do
  clients+="${clients:+,}127.0.0.1:$((base + 10 * (i - 1) + 1))"
  admins+=("127.0.0.1:$((base + 10 * (i - 1) + 2))")
done

# profile <name> <kraftbench flags...>: a fresh cluster, the load, a CPU
# profile of each node over SECS seconds in the middle of it.
profile() {
  local name=$1
  shift
  local d="$work/$name"
  for i in 1 2 3; do
    local p=$((base + 10 * (i - 1)))
    mkdir -p "$d/node$i"
    GOMAXPROCS=$(($(nproc) / 3 > 0 ? $(nproc) / 3 : 1)) bin/kraftd --node-id $i --cluster-id kraft-pgo \
      --bind-address 127.0.0.1 --raft-port $p --client-port $((p + 1)) --admin-port $((p + 2)) \
      --peers "$peers" --bootstrap --fsync-mode always \
      --data-dir "$d/node$i/data" --snapshot-dir "$d/node$i/snapshots" 2> "$d/node$i.log" &
    pids+=($!)
  done
  for i in 1 2 3; do
    local tries=0
    until grep -qs "kraftd started" "$d/node$i.log"; do
      tries=$((tries + 1))
      if [ $tries -gt 300 ] || ! kill -0 "${pids[$((i - 1))]}" 2> /dev/null; then
        echo "node $i did not start; its log:" >&2
        cat "$d/node$i.log" >&2
        exit 1
      fi
      sleep 0.1
    done
  done
  local warmup=3
  bin/kraftbench throughput --endpoints "$clients" --cluster-id kraft-pgo --clients 1024 --payload 128 \
    --duration "$((SECS + 4))s" --warmup "${warmup}s" --quiet --json "$@" > "$d/bench.txt" 2>&1 &
  local bench=$!
  sleep $((warmup + 2))
  local fetches=()
  for i in 1 2 3; do
    curl -sf -o "$d/node$i.pprof" "http://${admins[$((i - 1))]}/debug/pprof/profile?seconds=$SECS" &
    fetches+=($!)
  done
  local ok=1
  for f in "${fetches[@]}"; do wait "$f" || ok=0; done
  wait $bench || ok=0
  stop_nodes
  if [ $ok = 0 ]; then
    echo "$name: the load or a profile fetch failed:" >&2
    cat "$d/bench.txt" >&2
    exit 1
  fi
  echo "$name: $(grep -o '"ops_per_s":[0-9]*' "$d/bench.txt" | tail -1 | cut -d: -f2) ops/s while profiled"
}

profile writes1
profile writes2
profile reads --read-ratio 1
profile mixed --read-ratio 0.5
go tool pprof -proto "$work"/*/node*.pprof > "$work/merged.pgo"
mv "$work/merged.pgo" "$OUT"
echo "wrote $OUT ($(wc -c < "$OUT") bytes) from $(ls "$work"/*/node*.pprof | wc -l) profiles of ${SECS}s"
