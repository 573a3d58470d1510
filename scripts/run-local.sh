#!/usr/bin/env bash
# Starts a local Kraft cluster of real kraftd processes on 127.0.0.1 (what
# `make run` does). Node i listens on 7001+10(i-1) (peers), +1 (clients),
# +2 (admin HTTP); its data lives under ./data/node<i>. Ctrl-C stops every
# node gracefully. Running it again restarts the same cluster from ./data.
#
#   NODES=5 scripts/run-local.sh      # another cluster size (1-9)
#   FSYNC=batch scripts/run-local.sh  # another --fsync-mode
#   GOMAXPROCS=2 scripts/run-local.sh # each node's Go scheduler size
#                                     # (default: CPUs / NODES, at least 1)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
NODES=${NODES:-3}
FSYNC=${FSYNC:-always}
if ! [[ "$NODES" =~ ^[1-9]$ ]]; then
  echo "NODES must be 1-9, got '$NODES'" >&2
  exit 2
fi
for b in kraftd kraft-ctl; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b is missing: run 'make build' first" >&2; exit 1; }
done

# The nodes share this machine's CPUs: each gets its share unless
# GOMAXPROCS says otherwise (docs/tuning.md, "Several nodes on one machine").
PROCS=${GOMAXPROCS:-$(( $(nproc) / NODES ))}
if [ -n "${GOMAXPROCS:-}" ] && ! [[ "$GOMAXPROCS" =~ ^[1-9][0-9]*$ ]]; then
  echo "GOMAXPROCS must be a positive number, got '$GOMAXPROCS'" >&2
  exit 2
fi
[ "$PROCS" -ge 1 ] || PROCS=1

raft_port() { echo $((7001 + 10 * ($1 - 1))); }
peers=""
for i in $(seq 1 "$NODES"); do
  peers+="${peers:+,}$i=127.0.0.1:$(raft_port "$i")"
done

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "stopping ${#pids[@]} nodes..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    echo "stopped; data kept in ./data (make clean removes it)"
  fi
}
trap stop INT TERM EXIT

for i in $(seq 1 "$NODES"); do
  p=$(raft_port "$i")
  mkdir -p "data/node$i"
  GOMAXPROCS=$PROCS "$BIN/kraftd" --node-id "$i" --cluster-id kraft-local --bind-address 127.0.0.1 \
    --raft-port "$p" --client-port $((p + 1)) --admin-port $((p + 2)) \
    --peers "$peers" --bootstrap --fsync-mode "$FSYNC" \
    --data-dir "data/node$i/data" --snapshot-dir "data/node$i/snapshots" \
    2>>"data/node$i/kraftd.log" &
  pids+=($!)
done

endpoints=""
for i in $(seq 1 "$NODES"); do
  endpoints+="${endpoints:+,}127.0.0.1:$(( $(raft_port "$i") + 2 ))"
done
echo "waiting for a leader..."
for _ in $(seq 1 100); do
  if "$BIN/kraft-ctl" status --endpoints "$endpoints" --timeout 1s 2>/dev/null | grep -q '^Leader: node'; then
    break
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a node exited; see data/node*/kraftd.log" >&2; tail -n 5 data/node*/kraftd.log >&2; exit 1; }
  done
  sleep 0.1
done

echo
echo "Kraft cluster 'kraft-local' of $NODES nodes on 127.0.0.1 (fsync $FSYNC, GOMAXPROCS $PROCS each):"
for i in $(seq 1 "$NODES"); do
  p=$(raft_port "$i")
  printf "  node%d  peers 127.0.0.1:%d  clients 127.0.0.1:%d  admin http://127.0.0.1:%d  data ./data/node%d  log ./data/node%d/kraftd.log\n" \
    "$i" "$p" $((p + 1)) $((p + 2)) "$i" "$i"
done
echo
"$BIN/kraft-ctl" status --endpoints "$endpoints" || true
echo
echo "Try, in another terminal:"
echo "  $BIN/kraft-ctl put hello world && $BIN/kraft-ctl get hello"
echo "  $BIN/kraft-ctl nodes --endpoints $endpoints"
echo "  curl -s http://127.0.0.1:7003/metrics | grep ^kraft_"
echo
echo "Ctrl-C stops all $NODES nodes."
wait "${pids[@]}"
