#!/usr/bin/env bash
# collect-diagnostics.sh: the support archive of a Kraft node.
#
# Writes /tmp/kraft-diagnostics-<YYYYmmdd-HHMMSS>.tar.gz holding
#   status.txt   kraft-ctl status (or /health of every endpoint)
#   nodes.txt    kraft-ctl nodes (or /status of every endpoint)
#   state.json   kraft-ctl dump-state (or /status of the first endpoint that answers)
#   logs.txt     the last N log lines: --log-file, else journalctl -u <unit>
#   system.txt   uname, uptime, memory, disks, I/O, kraftd processes (from /proc), versions, tune check
#   network.txt  listening sockets, socket summary, connections on the Kraft ports, peer checks
# and, per endpoint, metrics-<host_port>.txt, health-<host_port>.json, config-<host_port>.json.
#
# Run it on the node in trouble (as root for full process details), then
# attach the archive to the report. It never stops at a missing tool or a
# node that does not answer: the file says what was missing instead.
#
# Usage: collect-diagnostics.sh [--endpoints H:P,...] [--admin-token T]
#          [--log-file PATH]... [--unit NAME] [--lines N] [--kraft-ctl PATH]
#          [--output-dir DIR] [--timeout SECONDS]
#   --endpoints    admin addresses (default $KRAFT_ENDPOINTS, else 127.0.0.1:7003)
#   --admin-token  bearer token for /metrics and /admin (default $KRAFT_ADMIN_TOKEN);
#                  never written into the archive
#   --log-file     kraftd's log when it does not go to journald (repeatable)
#   --unit         systemd unit (default kraft)
#   --lines        log lines to keep (default 1000)
#   --kraft-ctl    kraft-ctl binary (default: kraft-ctl on PATH, else next to this script's ../bin)
#   --output-dir   where the directory and archive go (default /tmp)
#   --timeout      seconds per command (default 10)
set -u
set -o pipefail

ENDPOINTS=${KRAFT_ENDPOINTS:-127.0.0.1:7003}
TOKEN=${KRAFT_ADMIN_TOKEN:-}
LOG_FILES=()
UNIT=kraft
LINES=1000
KRAFT_CTL=
OUTPUT_BASE=/tmp
TIMEOUT=10

usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; }
die_usage() { echo "collect-diagnostics.sh: $1" >&2; echo "Run 'collect-diagnostics.sh --help' for usage." >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --endpoints=*) ENDPOINTS=${1#*=} ;;
    --admin-token=*) TOKEN=${1#*=} ;;
    --log-file=*) LOG_FILES+=("${1#*=}") ;;
    --unit=*) UNIT=${1#*=} ;;
    --lines=*) LINES=${1#*=} ;;
    --kraft-ctl=*) KRAFT_CTL=${1#*=} ;;
    --output-dir=*) OUTPUT_BASE=${1#*=} ;;
    --timeout=*) TIMEOUT=${1#*=} ;;
    --endpoints|--admin-token|--log-file|--unit|--lines|--kraft-ctl|--output-dir|--timeout)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      case "$1" in
        --endpoints) ENDPOINTS=$2 ;;
        --admin-token) TOKEN=$2 ;;
        --log-file) LOG_FILES+=("$2") ;;
        --unit) UNIT=$2 ;;
        --lines) LINES=$2 ;;
        --kraft-ctl) KRAFT_CTL=$2 ;;
        --output-dir) OUTPUT_BASE=$2 ;;
        --timeout) TIMEOUT=$2 ;;
      esac
      shift ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$LINES" =~ ^[0-9]+$ ]] || die_usage "--lines must be a number, got '$LINES'"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die_usage "--timeout must be a number of seconds, got '$TIMEOUT'"

have() { command -v "$1" >/dev/null 2>&1; }

if [ -z "$KRAFT_CTL" ]; then
  if have kraft-ctl; then
    KRAFT_CTL=$(command -v kraft-ctl)
  elif [ -x "$(dirname "$0")/../bin/kraft-ctl" ]; then
    KRAFT_CTL="$(dirname "$0")/../bin/kraft-ctl"
  fi
fi

KRAFT_CTL_GIVEN=$KRAFT_CTL
if [ -n "$KRAFT_CTL" ] && ! [ -x "$KRAFT_CTL" ]; then
  KRAFT_CTL=$(command -v "$KRAFT_CTL" 2>/dev/null || true)
fi

# kraft-ctl reads both from its environment, so no token appears in a
# command line (ps) or in the archive.
export KRAFT_ENDPOINTS="$ENDPOINTS"
if [ -n "$TOKEN" ]; then export KRAFT_ADMIN_TOKEN="$TOKEN"; fi

TS=$(date +%Y%m%d-%H%M%S)
NAME="kraft-diagnostics-$TS"
OUT="$OUTPUT_BASE/$NAME"
mkdir -p "$OUT" || { echo "collect-diagnostics.sh: cannot create $OUT" >&2; exit 1; }
NOTES="$OUT/README.txt"
{
  echo "Kraft diagnostics collected $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n 2>/dev/null || echo '?')"
  echo "endpoints: $ENDPOINTS"
  echo "kraft-ctl: ${KRAFT_CTL:-(not found${KRAFT_CTL_GIVEN:+: $KRAFT_CTL_GIVEN is not executable})}"
  echo "admin token: $([ -n "$TOKEN" ] && echo 'set (not recorded)' || echo 'not set')"
  echo
  echo "Missing tools and failed steps:"
} >"$NOTES"
note() { echo "  - $*" >>"$NOTES"; }

# limited CMD...: CMD under the per-command timeout when timeout(1) exists.
limited() {
  if have timeout; then timeout "$TIMEOUT" "$@"; else "$@"; fi
}

# section FILE TITLE CMD...: append "== TITLE" and CMD's output to FILE; a
# missing CMD or a failure is written there (and in README.txt), never fatal.
section() {
  local file=$1 title=$2
  shift 2
  {
    echo "== $title"
    if ! have "$1"; then
      echo "($1: not installed on this host)"
      note "$1 not installed ($title)"
    else
      limited "$@" 2>&1
      local rc=$?
      [ $rc -eq 0 ] || { echo "(exit status $rc)"; note "$title: exit status $rc"; }
    fi
    echo
  } >>"$file"
}

# kctl FILE TITLE ARGS...: kraft-ctl ARGS into FILE; returns kraft-ctl's status.
kctl() {
  local file=$1 title=$2 rc
  shift 2
  if [ -z "$KRAFT_CTL" ]; then
    echo "(kraft-ctl not found: install it or pass --kraft-ctl)" >>"$file"
    note "kraft-ctl not found ($title)"
    return 127
  fi
  limited "$KRAFT_CTL" "$@" >>"$file" 2>&1
  rc=$?
  [ $rc -eq 0 ] || note "kraft-ctl $*: exit status $rc"
  return $rc
}

# admin_get ENDPOINT PATH: GET http://ENDPOINT/PATH to stdout (curl or wget).
admin_get() {
  local url="http://$1$2"
  if have curl; then
    if [ -n "$TOKEN" ]; then
      curl -sS --max-time "$TIMEOUT" -H "Authorization: Bearer $TOKEN" "$url"
    else
      curl -sS --max-time "$TIMEOUT" "$url"
    fi
  elif have wget; then
    if [ -n "$TOKEN" ]; then
      wget -q -O - -T "$TIMEOUT" --header "Authorization: Bearer $TOKEN" "$url"
    else
      wget -q -O - -T "$TIMEOUT" "$url"
    fi
  else
    echo "(neither curl nor wget is installed)"
    return 127
  fi
}

IFS=',' read -r -a EPS <<<"$ENDPOINTS"

# ---- per-endpoint raw data (also the fallback for the files below) --------
for ep in "${EPS[@]}"; do
  ep=${ep// /}
  [ -n "$ep" ] || continue
  tag=${ep//[^A-Za-z0-9._-]/_}
  admin_get "$ep" /metrics >"$OUT/metrics-$tag.txt" 2>&1 || note "GET $ep/metrics failed"
  admin_get "$ep" /health >"$OUT/health-$tag.json" 2>&1 || note "GET $ep/health failed (503 = unhealthy, see the file)"
  admin_get "$ep" /status >"$OUT/status-$tag.json" 2>&1 || note "GET $ep/status failed"
  admin_get "$ep" /admin/config >"$OUT/config-$tag.json" 2>&1 || note "GET $ep/admin/config failed"
done

# ---- status.txt --------------------------------------------------------------
F="$OUT/status.txt"
echo "== kraft-ctl status" >"$F"
if ! kctl "$F" status status; then
  echo >>"$F"
  echo "== fallback: GET /health of each endpoint" >>"$F"
  for ep in "${EPS[@]}"; do
    echo "-- $ep" >>"$F"
    admin_get "$ep" /health >>"$F" 2>&1
    echo >>"$F"
  done
fi
for c in health term debug-state; do
  echo >>"$F"
  echo "== kraft-ctl $c" >>"$F"
  kctl "$F" "$c" "$c" || true
done

# ---- nodes.txt ---------------------------------------------------------------
F="$OUT/nodes.txt"
echo "== kraft-ctl nodes" >"$F"
if ! kctl "$F" nodes nodes; then
  echo >>"$F"
  echo "== fallback: GET /status of each endpoint" >>"$F"
  for ep in "${EPS[@]}"; do
    echo "-- $ep" >>"$F"
    admin_get "$ep" /status >>"$F" 2>&1
    echo >>"$F"
  done
fi
echo >>"$F"
echo "== kraft-ctl replication-status" >>"$F"
kctl "$F" replication-status replication-status || true

# ---- state.json --------------------------------------------------------------
F="$OUT/state.json"
state_ok=0
if [ -n "$KRAFT_CTL" ] && limited "$KRAFT_CTL" dump-state >"$F.tmp" 2>"$OUT/state.err" && [ -s "$F.tmp" ]; then
  mv "$F.tmp" "$F"
  state_ok=1
else
  note "kraft-ctl dump-state unavailable or failed ($(head -c 200 "$OUT/state.err" 2>/dev/null | tr '\n' ' ')); state.json is GET /status"
  for ep in "${EPS[@]}"; do
    if admin_get "$ep" /status >"$F.tmp" 2>/dev/null && head -c 1 "$F.tmp" | grep -q '{'; then
      mv "$F.tmp" "$F"
      state_ok=1
      break
    fi
  done
fi
rm -f "$F.tmp" "$OUT/state.err"
if [ $state_ok -eq 0 ]; then
  printf '{"error": "no endpoint answered (kraft-ctl dump-state and GET /status both failed)", "endpoints": "%s"}\n' "$ENDPOINTS" >"$F"
fi

# ---- logs.txt ----------------------------------------------------------------
F="$OUT/logs.txt"
: >"$F"
if [ ${#LOG_FILES[@]} -gt 0 ]; then
  for lf in "${LOG_FILES[@]}"; do
    echo "== tail -n $LINES $lf" >>"$F"
    if [ -r "$lf" ]; then tail -n "$LINES" "$lf" >>"$F" 2>&1; else echo "(cannot read $lf)" >>"$F"; note "cannot read log file $lf"; fi
    echo >>"$F"
  done
elif have journalctl; then
  echo "== journalctl -u $UNIT -n $LINES --no-pager" >>"$F"
  limited journalctl -u "$UNIT" -n "$LINES" --no-pager >>"$F" 2>&1 || note "journalctl -u $UNIT failed (no systemd journal here? use --log-file)"
else
  echo "(no --log-file given and journalctl is not installed: pass --log-file PATH)" >>"$F"
  note "no logs: journalctl missing and no --log-file"
fi

# ---- system.txt --------------------------------------------------------------
F="$OUT/system.txt"
: >"$F"
section "$F" "date" date -u
section "$F" "uname -a" uname -a
section "$F" "uptime" uptime
if have free; then section "$F" "free -h" free -h; else section "$F" "/proc/meminfo" head -n 20 /proc/meminfo; note "free not installed: /proc/meminfo instead"; fi
section "$F" "df -h" df -h
section "$F" "df -i" df -i
if have iostat; then
  section "$F" "iostat -x 1 3" iostat -x 1 3
else
  note "iostat not installed (sysstat): /proc/diskstats instead"
  section "$F" "/proc/diskstats (iostat not installed)" cat /proc/diskstats
fi
section "$F" "/proc/pressure/io" cat /proc/pressure/io
section "$F" "/proc/loadavg" cat /proc/loadavg
{
  echo "== kraftd processes (from /proc)"
  found=0
  for d in /proc/[0-9]*; do
    [ -r "$d/comm" ] || continue
    [ "$(cat "$d/comm" 2>/dev/null)" = "kraftd" ] || continue
    found=1
    pid=${d#/proc/}
    echo "-- pid $pid"
    echo "cmdline: $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null | sed -E 's/(--admin-token[= ])[^ ]+/\1<masked>/g')"
    exe=$(readlink "$d/exe" 2>/dev/null || true)
    echo "exe: ${exe:-?}"
    if [ -n "$exe" ] && [ -x "$exe" ]; then echo "version: $(limited "$exe" --version 2>&1 | head -n 1)"; fi
    echo "cwd: $(readlink "$d/cwd" 2>/dev/null || echo '?')"
    grep -E '^(State|PPid|Uid|VmPeak|VmRSS|VmSwap|Threads|voluntary_ctxt_switches|nonvoluntary_ctxt_switches)' "$d/status" 2>/dev/null
    echo "open fds: $(ls "$d/fd" 2>/dev/null | wc -l)"
    grep -E '^(Max open files|Max processes|Max locked memory)' "$d/limits" 2>/dev/null
    echo "started: $(ps -o lstart= -p "$pid" 2>/dev/null || echo '?')"
    echo "oom_score: $(cat "$d/oom_score" 2>/dev/null || echo '?')"
    echo
  done
  [ $found -eq 1 ] || echo "(no process named kraftd on this host)"
  echo
} >>"$F"
if have kraftd; then section "$F" "kraftd --version (on PATH)" kraftd --version; fi
echo "== kraft-ctl version" >>"$F"
kctl "$F" version version || true
echo >>"$F"
echo "== kraft-ctl tune check" >>"$F"
kctl "$F" "tune check (exit 1 = some check is WARN)" tune check || true
echo >>"$F"
for c in snapshot-status memory-stats disk-stats latency-breakdown; do
  echo "== kraft-ctl $c" >>"$F"
  kctl "$F" "$c" "$c" || true
  echo >>"$F"
done
if have timedatectl && [ -d /run/systemd/system ]; then section "$F" "timedatectl" timedatectl; fi
if have chronyc; then section "$F" "chronyc tracking" chronyc tracking; fi

# ---- network.txt -------------------------------------------------------------
F="$OUT/network.txt"
: >"$F"
if have netstat; then
  {
    echo "== netstat -tlnp | grep kraft"
    limited netstat -tlnp 2>&1 | grep -E 'kraft|Proto' || echo "(no listening socket owned by a kraft process; as root netstat shows the owners)"
    echo
  } >>"$F"
else
  note "netstat not installed: ss -tlnp instead"
fi
if have ss; then
  {
    echo "== ss -tlnp (listening TCP)"
    limited ss -tlnp 2>&1
    echo
  } >>"$F"
  section "$F" "ss -s" ss -s
  ports=""
  for ep in "${EPS[@]}"; do ports+="${ports:+|}:${ep##*:}"; done
  {
    echo "== ss -tnpi, connections of kraftd (process name) or on the endpoint ports"
    limited ss -tnpi 2>&1 | grep -E -A1 "kraftd|${ports:-:7003}" || echo "(none seen)"
    echo
  } >>"$F"
else
  note "ss not installed"
  section "$F" "/proc/net/tcp" cat /proc/net/tcp
fi
if have ip; then section "$F" "ip -brief address" ip -brief address; fi
for c in ping-peers connectivity-test; do
  echo "== kraft-ctl $c" >>"$F"
  kctl "$F" "$c" "$c" || true
  echo >>"$F"
done

# ---- archive -----------------------------------------------------------------
if ! tar czf "$OUT.tar.gz" -C "$OUTPUT_BASE" "$NAME"; then
  echo "collect-diagnostics.sh: tar failed; the files are in $OUT" >&2
  exit 1
fi
echo "Diagnostics collected: $OUT.tar.gz"
