#!/usr/bin/env bash
# Corvid's HTTPS API on a real 3-node cluster (a temporary directory, loopback only): every node
# started here is stopped at the end. Steps, in this order (BENCH_STEPS picks some):
#   whoami    GET /certificates/whoami per second on keep-alive connections to one node, with
#             BENCH_COUNTS registered certificates (registered in bulk with PUT between the
#             rows), and each node's RSS at each count
#   join      at each of BENCH_COUNTS: a new node (D, then E, ...) is added with
#             PUT /admin/cluster/node; the time until that call returned and until the new node
#             serves (it answers whoami for the last certificate registered); then removed
#   restart   after the loads: the three nodes stopped (SIGTERM) and started again on their
#             data; the time until every node serves the last registered certificate, and RSS
#   revoke    time from DELETE /admin/certificates returning until every node refuses the
#             certificate on a new connection, via the leader and via a follower
#   generate  POST /admin/certificates (EC-P256, zip returned) per second, 16 and 64 clients
#   register  PUT /admin/certificates per second, 1 and 64 clients
#   failover  kill -9 of the leader: the time until the survivors agree on a new leader, until
#             a write commits through one of them, and until the old leader, restarted on its
#             data, serves again (the durations the cluster tests wait for but never assert)
#
#   tools/bench/http.sh                           build (Release), then every step
#   BENCH_NO_BUILD=1 tools/bench/http.sh          use build/release as it is
#   BENCH_STEPS="whoami revoke" ...               some steps only
#   BENCH_COUNTS="1000 100000" ...                whoami and join rows: certificates registered
#   BENCH_BUNDLE=64 ...                           certificates per PUT for the bulk loads
#                                                 (default 1: one PUT per certificate)
#   BENCH_REVOKE_COUNT=1000 ...                   revocations per row (default 1000)
#   BENCH_SECONDS=5 BENCH_WARMUP=1 ...            measuring window per row
#   BENCH_CLIENTS="64" ...                        whoami connections per row (default "1 16 64 256")
#   BENCH_REPEAT=3 ...                            whoami runs per row (the median is shown)
#   BENCH_PORT=29080 ...                          port base (HTTPS +1..3, Raft +11..13)
#   BENCH_CORVID_EXTRA='"Cluster.SnapshotThreshold": 100000,'   extra node config keys
#   BENCH_LOG_LEVEL=Information BENCH_KEEP=1 ...  node logs, and keep the directory
#   BENCH_RESULTS=FILE ...                        also copy the raw result lines to FILE
# ~6 min with the defaults. BENCH_COUNTS="1000 100000 1000000" BENCH_BUNDLE=256 reaches a
# million certificates (~6 min of loading); loopback only, 2 CPUs shared by everything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "${1:-}" in
  -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--help]  (settings come from BENCH_* variables)" >&2; exit 2 ;;
esac
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
STEPS=" ${BENCH_STEPS:-whoami join restart revoke generate register failover} "
COUNTS=${BENCH_COUNTS:-1000 100000}
BUNDLE=${BENCH_BUNDLE:-1}
REVOKES=${BENCH_REVOKE_COUNT:-1000}
WCLIENTS=${BENCH_CLIENTS:-1 16 64 256}
REPEAT=${BENCH_REPEAT:-3}
PORT=${BENCH_PORT:-29080}
BUILD=$ROOT/build/release

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "${BENCH_NO_BUILD:-}" = "" ]; then
  # shellcheck source=SCRIPTDIR/../lib/deps.sh
  . "$ROOT/tools/lib/deps.sh"
  # shellcheck disable=SC2086
  corvid_install_packages $CORVID_BUILD_PACKAGES
  say "building Corvid (Release) in $BUILD"
  mkdir -p "$ROOT/build"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-DNDEBUG \
    -DCORVID_TESTS=OFF >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"${BENCH_JOBS:-2}" --target corvid-node corvid corvid-bench \
    >"$BUILD.build.log" 2>&1 || { tail -n 40 "$BUILD.build.log"; exit 1; }
fi
NODE=$BUILD/corvid-node CLI=$BUILD/corvid BENCH=$BUILD/corvid-bench
for b in "$NODE" "$CLI" "$BENCH"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done

for port in $(seq $((PORT + 1)) $((PORT + 9))) $(seq $((PORT + 11)) $((PORT + 19))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; set BENCH_PORT to another base" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/corvid-bench-http.XXXXXX")
PIDS=""
cleanup() {
  stop_all
  if [ "${BENCH_KEEP:-}" = "" ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_all: SIGTERM to every node started here, then wait for them (KILL after 10 s).
stop_all() {
  local p
  for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $PIDS; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=""
}

wait_for() {
  local end=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { say "timed out waiting for $what"; tail -n 20 "$WORK"/*.log >&2; exit 1; }
    sleep 0.2
  done
}

# ---- the cluster ----
say "PKI and 3 nodes in $WORK"
C=$WORK
"$CLI" pki init-cluster --out "$C/pki" --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 >/dev/null
url() { case "$1" in A) echo "https://127.0.0.1:$((PORT + 1))";; B) echo "https://127.0.0.1:$((PORT + 2))";; C) echo "https://127.0.0.1:$((PORT + 3))";; esac; }
boot="" i=0
for t in A B C; do
  i=$((i + 1))
  boot="$boot${boot:+,}{\"Tag\":\"$t\",\"ServerUrl\":\"$(url $t)\",\"TcpUrl\":\"tls://127.0.0.1:$((PORT + 10 + i))\"}"
done
i=0
declare -A PID
for t in A B C; do
  i=$((i + 1))
  cat >"$C/$t.json" <<EOF
{
  "ServerUrl": "$(url $t)",
  "ServerUrl.Tcp": "tls://127.0.0.1:$((PORT + 10 + i))",
  "DataDir": "data/$t",
  "Security.Certificate.Path": "pki/$t.pfx",
  "Security.ClusterCA.Path": "pki/issuing.pfx",
  "Security.MasterKey.Path": "pki/master.key",
  "Cluster.NodeTag": "$t",
  "Cluster.Bootstrap": [$boot],
  ${BENCH_CORVID_EXTRA:-}
  "Logs.Level": "${BENCH_LOG_LEVEL:-Warning}"
}
EOF
done
start_node() {
  (cd "$C" && exec "$NODE" --config "$1.json" >>"$WORK/$1.log" 2>&1) &
  PID[$1]=$!
  PIDS="$PIDS $!"
}
for t in A B C; do start_node "$t"; done
field() { "$CLI" admin-channel --data-dir "$C/data/$1" info 2>/dev/null | sed -n "s/^$2: //p"; }
ready() {
  local l t
  l=$(field A Leader)
  case "$l" in A|B|C) ;; *) return 1 ;; esac
  [ "$(field "$l" State)" = Leader ] && [ "$(field "$l" Certificates)" -ge 1 ] || return 1
  for t in A B C; do
    [ "$(field "$t" Leader)" = "$l" ] && [ "$(field "$t" Serving)" = yes ] || return 1
  done
}
wait_for 30 "a leader and 3 serving nodes" ready
L=$(field A Leader)
F=$(for t in A B C; do [ "$t" = "$L" ] || echo "$t"; done | head -n 1)
# From here on only cheap questions: `info` hashes the whole state (twice) and counts every
# certificate on the node's event loop, which at ~1M certificates stalls the node for seconds.
# "LEADER TERM" as node $1 sees it
leader_term() {
  "$CLI" admin-channel --data-dir "$C/data/$1" clusterStatus 2>/dev/null |
    sed -n 's/^Leader: \([^ ]*\) (term \([0-9]*\))$/\1 \2/p'
}
LT0=$(leader_term A)
say "leader: $L (leader and term: $LT0), follower used: $F"
REGISTERED=$(field A Certificates) # small yet
# known_everywhere PEM: every node answers whoami for this certificate with 200 (registered)
known_everywhere() {
  local t
  for t in A B C; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/pki/ca-chain.crt" --cert "$1" \
      "$(url "$t")/certificates/whoami")" = 200 ] || return 1
  done
}
rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${PID[$1]}/status"; }
# CPU time of a node so far, in clock ticks (all its threads)
ticks() { awk '{ print $14 + $15 }' "/proc/${PID[$1]}/stat"; }
rss_all() { echo "A $(rss A) MiB, B $(rss B) MiB, C $(rss C) MiB"; }
# The caller: node A's certificate (ClusterNode everywhere; what the README's curl flow uses).
TLS=(--cacert "$C/pki/ca-chain.crt" --cert "$C/pki/A.pem")
ALL_URLS=(--url "$(url A)" --url "$(url B)" --url "$(url C)")

RESULTS=$WORK/results
: >"$RESULTS"
# busy CPU ticks of the machine, and of the three nodes
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
nodes_ticks() { echo $(($(ticks A) + $(ticks B) + $(ticks C))); }
# run LABEL COMMAND...: runs one load generator, shows its output, keeps its RESULT lines, and
# sets OTHERS: the CPU that processes other than the nodes and the load generator used meanwhile
# (% of one core; this machine is shared, and a busy neighbour shows up here).
run() {
  local out rc=0 m0 n0 t0 m1 n1 t1
  say "$1"
  shift
  m0=$(machine_busy) n0=$(nodes_ticks) t0=$(date +%s.%N)
  out=$(/usr/bin/time -f "%U %S" -o "$WORK/time" "$@") || rc=$?
  m1=$(machine_busy) n1=$(nodes_ticks) t1=$(date +%s.%N)
  OTHERS=$(awk -v m="$((m1 - m0))" -v n="$((n1 - n0))" -v s="$t0" -v e="$t1" \
    -v hz="$(getconf CLK_TCK)" '{ printf "%.0f%%", 100 * ((m - n) / hz - $1 - $2) / (e - s) }' "$WORK/time")
  echo "$out" | grep -v '^RESULT\|^REVOKE\|^REGISTERED' | sed 's/^/    /' >&2
  echo "$out" | grep '^RESULT\|^REVOKE\|^REGISTERED' >"$WORK/last" || true
  [ -s "$WORK/last" ] || { say "FAILED (exit $rc): $*"; tail -n 5 "$WORK"/?.log >&2; exit 1; }
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$WORK/last" | head -n 1; }
TABLE=$WORK/table
: >"$TABLE"
# shellcheck disable=SC2059 # row FORMAT ARGS...: the format is the caller's literal
row() { printf "$@" >>"$TABLE"; }

# register_callers DIR: 256 certificates, one per PUT (after whatever came before has been
# answered), saved as DIR/0.pem..255.pem; then one more as a marker: once every node knows the
# marker, it has applied everything registered before it.
register_callers() {
  run "registering 256 callers, one per PUT, and a marker" "$BENCH" http-register \
    --url "$(url "$L")" "${TLS[@]}" --clients 16 --count 256 --issuer "$C/pki/issuing.pfx" \
    --save "$1" --save-count 256
  run "  the marker" "$BENCH" http-register --url "$(url "$L")" "${TLS[@]}" --clients 1 \
    --count 1 --issuer "$C/pki/issuing.pfx" --save "$1.marker" --save-count 1
  REGISTERED=$((REGISTERED + 257))
  wait_for 900 "every node knowing the marker certificate" known_everywhere "$1.marker/0.pem"
}

# join_node: a new node (D, E, ... in turn): exports the server certificates, starts it passive
# trusting them, adds it through the leader, waits until it serves the last registered
# certificate (a JOIN result line), then removes it again.
JOIN_NEXT=4
join_node() {
  local k=$JOIN_NEXT tag t0 t1 t2 code
  JOIN_NEXT=$((JOIN_NEXT + 1))
  tag=$(echo DEFGHI | cut -c$((k - 3)))
  local hurl="https://127.0.0.1:$((PORT + k))" tcp="tls://127.0.0.1:$((PORT + 10 + k))"
  "$CLI" pki init-node --ca-dir "$C/pki" --tag "$tag" --host 127.0.0.1 >/dev/null
  curl -sf --cacert "$C/pki/ca-chain.crt" --cert "$C/pki/A.pem" -o "$C/export-$tag.pfx" \
    "$(url "$L")/admin/certificates/export" || { say "export failed"; exit 1; }
  printf '{\n  "ServerUrl": "%s",\n  "ServerUrl.Tcp": "%s",\n  "DataDir": "data/%s",
  "Security.Certificate.Path": "pki/%s.pfx",\n  "Security.MasterKey.Path": "pki/master.key",
  "Cluster.NodeTag": "%s",
  "Cluster.TrustedNodeCertificates.Path": "export-%s.pfx",\n  %s\n  "Logs.Level": "%s"\n}\n' \
    "$hurl" "$tcp" "$tag" "$tag" "$tag" "$tag" "${BENCH_CORVID_EXTRA:-}" \
    "${BENCH_LOG_LEVEL:-Warning}" >"$C/$tag.json"
  (cd "$C" && exec "$NODE" --config "$tag.json" >"$WORK/$tag.log" 2>&1) &
  PID[$tag]=$!
  PIDS="$PIDS $!"
  wait_for 30 "$tag listening" curl -sk "$hurl/cluster/node-info"
  say "adding $tag with $REGISTERED certificates registered"
  t0=$(date +%s.%N)
  code=$(curl -s -L -o "$WORK/join.body" -w '%{http_code}' --cacert "$C/pki/ca-chain.crt" \
    --cert "$C/pki/A.pem" -X PUT "$(url "$L")/admin/cluster/node?url=$hurl&tag=$tag")
  t1=$(date +%s.%N)
  case $code in 2??) ;; *) say "PUT /admin/cluster/node: $code $(cat "$WORK/join.body")"; exit 1 ;; esac
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/pki/ca-chain.crt" \
    --cert "$callers.marker/0.pem" "$hurl/certificates/whoami")" = 200 ]; do
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 900) }' &&
      { say "$tag did not serve within 900 s"; tail -n 20 "$WORK/$tag.log" >&2; exit 1; }
    sleep 0.05
  done
  t2=$(date +%s.%N)
  echo "JOIN registered=$REGISTERED tag=$tag" \
    "put_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
    "serving_secs=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')" \
    "rss_mib=$(rss "$tag")" >"$WORK/last"
  cat "$WORK/last" >>"$RESULTS"
  JOINS="$JOINS$(printf '%-10s %-4s %8s %12s %7s' "$REGISTERED" "$tag" "$(kv put_secs)" \
    "$(kv serving_secs)" "$(kv rss_mib)")
"
  say "$tag served $(kv serving_secs) s after PUT /admin/cluster/node was sent (it returned after $(kv put_secs) s)"
  curl -sfL --cacert "$C/pki/ca-chain.crt" --cert "$C/pki/A.pem" -X DELETE \
    "$(url "$L")/admin/cluster/node?nodeTag=$tag" || { say "removing $tag failed"; exit 1; }
  kill -TERM "${PID[$tag]}" 2>/dev/null || true
  wait "${PID[$tag]}" 2>/dev/null || true
}

# ---- whoami and join at each count ----
JOINS=""
if [[ $STEPS == *" whoami "* || $STEPS == *" join "* ]]; then
  [[ $STEPS != *" whoami "* ]] ||
    row '%-10s %-8s %8s %9s %13s %8s %8s %8s %6s %6s %7s  %s\n' "registered" "clients" "ops" \
      "rate/s" "$([ "$REPEAT" = 1 ] && echo range || echo "range ($REPEAT runs)")" "p50 ms" \
      "p99 ms" "max ms" "errors" "CPU" "others" "RSS after (A,B,C)"
  LOADS=""
  callers=""
  for want in $COUNTS; do
    add=$((want - REGISTERED - 257))
    if [ "$add" -gt 0 ]; then
      t0=$(date +%s.%N)
      run "registering $add certificates with PUT through $L (bundles of $BUNDLE, 64 connections)" \
        "$BENCH" http-register --url "$(url "$L")" "${TLS[@]}" --clients 64 --count "$add" \
        --bundle "$BUNDLE" --issuer "$C/pki/issuing.pfx"
      REGISTERED=$((REGISTERED + $(kv certs)))
      bulk_rate=$(kv certs_per_s)
      [ "$(kv errors)" = 0 ] || say "note: $(kv errors) PUTs failed; their certificates are not counted"
      # The callers come after the bulk: a bundle's first certificate lists the others (its
      # whoami answer would be large), and the marker tells when every node has applied it all.
      callers=$WORK/callers-$want
      register_callers "$callers"
      t1=$(date +%s.%N)
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
      lt=$(leader_term A)
      [ "$lt" = "$LT0" ] || say "note: leader and term now $lt (were $LT0): an election"
      say "$REGISTERED certificates registered; $((add + 257)) took $secs s until applied on every" \
        "node ($bulk_rate/s answered for the bulk PUTs); RSS: $(rss_all)"
      echo "LOAD registered=$REGISTERED added=$((add + 257)) secs=$secs bundle=$BUNDLE" >>"$RESULTS"
      LOADS="$LOADS$(printf '%-10s %8s %8s %9s %7s  %s' "$REGISTERED" "$((add + 257))" "$secs" \
        "$(awk -v a="$((add + 257))" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')" "$BUNDLE" \
        "$(rss A), $(rss B), $(rss C) MiB")
"
    elif [ -z "$callers" ]; then
      callers=$WORK/callers-0
      register_callers "$callers"
    fi
    if [[ $STEPS == *" join "* ]]; then join_node; fi
    [[ $STEPS == *" whoami "* ]] || continue
    for cl in $WCLIENTS; do
      # REPEAT runs of the row; the table shows the one with the median rate, and the range
      : >"$WORK/rows"
      for r in $(seq "$REPEAT"); do
        c0=$(ticks "$L") t0=$(date +%s.%N)
        run "whoami, $REGISTERED certificates registered, $cl connections to $L ($r/$REPEAT)" \
          "$BENCH" http-whoami --url "$(url "$L")" --cacert "$C/pki/ca-chain.crt" \
          --callers "$callers" --clients "$cl" --seconds "$SECS" --warmup "$WARMUP" \
          --target "whoami@$REGISTERED"
        c1=$(ticks "$L") t1=$(date +%s.%N)
        cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" \
          'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / (e - s) }')
        printf '%s %s %s %s %s %s %s %s %s\n' "$(kv rate)" "$(kv ops)" "$(kv p50)" "$(kv p99)" \
          "$(kv max)" "$(kv errors)" "$cpu" "$OTHERS" "$(rss A),$(rss B),$(rss C)" >>"$WORK/rows"
        cat "$WORK/last" >>"$RESULTS"
      done
      sort -n "$WORK/rows" | awk -v n="$REPEAT" -v reg="$REGISTERED" -v cl="$cl" '
        { rate[NR] = $1; line[NR] = $0 }
        END {
          split(line[int((n + 1) / 2)], f, " ")
          range = n > 1 ? sprintf("%.0f-%.0f", rate[1], rate[n]) : "-"
          printf "%-10s %-8s %8s %9.0f %13s %8s %8s %8s %6s %6s %7s  %s MiB\n", reg, cl, f[2],
            f[1], range, f[3], f[4], f[5], f[6], f[7], f[8], f[9]
        }' >>"$TABLE"
    done
  done
  row '\n'
  if [ -n "$LOADS" ]; then
    row '%-10s %8s %8s %9s %7s  %s\n' "registered" "added" "secs" "certs/s" "bundle" \
      "RSS after (A, B, C); secs = PUTs sent until applied on every node"
    row '%s\n' "$LOADS"
  fi
  if [ -n "$JOINS" ]; then
    row '%-10s %-4s %8s %12s %7s  %s\n' "registered" "node" "PUT secs" "serving secs" "RSS MiB" \
      "(secs from PUT /admin/cluster/node sent)"
    row '%s\n' "$JOINS"
  fi
fi

# ---- restart on the loaded data ----
if [[ $STEPS == *" restart "* ]]; then
  [ -n "${callers:-}" ] || { callers=$WORK/callers-0; register_callers "$callers"; }
  say "restarting A, B and C on their data ($REGISTERED certificates)"
  stop_all
  t0=$(date +%s.%N)
  for t in A B C; do start_node "$t"; done
  wait_for 600 "every node serving again" known_everywhere "$callers.marker/0.pem"
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  has_leader() { case $(leader_term A) in "" | "(none)"*) return 1 ;; esac; }
  wait_for 30 "a leader" has_leader
  L=$(leader_term A | cut -d' ' -f1)
  F=$(for t in A B C; do [ "$t" = "$L" ] || echo "$t"; done | head -n 1)
  LT0=$(leader_term A)
  echo "RESTART registered=$REGISTERED secs=$secs rss=$(rss A),$(rss B),$(rss C)" >>"$RESULTS"
  say "every node served again $secs s after being started; RSS: $(rss_all); leader $L"
  row '%-10s %14s  %s\n' "registered" "restart secs" "RSS after (A, B, C)"
  row '%-10s %14s  %s\n\n' "$REGISTERED" "$secs" "$(rss A), $(rss B), $(rss C) MiB"
fi

# ---- revocation ----
if [[ $STEPS == *" revoke "* ]]; then
  row '%-22s %6s %7s %10s %9s %9s %9s %9s %7s %7s\n' "revoke via" "count" "failed" \
    "DELETE p50" "p50 ms" "p90 ms" "p99 ms" "max ms" "served" "others"
  for via in "$L" "$F"; do
    role=leader
    [ "$via" = "$L" ] || role=follower
    run "revoke: $REVOKES certificates, DELETE via $via ($role), probing A, B, C" \
      "$BENCH" revoke "${ALL_URLS[@]}" --delete-url "$(url "$via")" "${TLS[@]}" \
      --count "$REVOKES" --issuer "$C/pki/issuing.pfx" --target "$role"
    row '%-22s %6s %7s %10s %9s %9s %9s %9s %7s %7s\n' "$via ($role)" "$(kv count)" \
      "$(kv failed)" "$(kv del_p50)" "$(kv p50)" "$(kv p90)" "$(kv p99)" "$(kv max)" \
      "$(kv served_after)" "$OTHERS"
    cat "$WORK/last" >>"$RESULTS"
  done
  row '\n'
fi

# ---- generate and register rates ----
HDR=0
rate_row() {
  if [ "$HDR" = 0 ]; then
    row '%-16s %-9s %7s %7s %8s %8s %8s %8s %6s %7s\n' "what" "target" "clients" "ops" \
      "rate/s" "p50 ms" "p99 ms" "max ms" "errors" "others"
    HDR=1
  fi
  row '%-16s %-9s %7s %7s %8.0f %8s %8s %8s %6s %7s\n' "$1" "$2" "$(kv clients)" "$(kv ops)" \
    "$(kv rate)" "$(kv p50)" "$(kv p99)" "$(kv max)" "$(kv errors)" "$OTHERS"
  cat "$WORK/last" >>"$RESULTS"
}
if [[ $STEPS == *" generate "* ]]; then
  for cl in 16 64; do
    run "generate: POST /admin/certificates, $cl connections to $L" \
      "$BENCH" http-generate --url "$(url "$L")" "${TLS[@]}" --clients "$cl" --seconds "$SECS" \
      --warmup "$WARMUP" --target leader
    rate_row "POST generate" leader
  done
  run "generate: POST /admin/certificates, 64 connections over A, B, C" \
    "$BENCH" http-generate "${ALL_URLS[@]}" "${TLS[@]}" --clients 64 --seconds "$SECS" \
    --warmup "$WARMUP" --target spread
  rate_row "POST generate" spread
fi
if [[ $STEPS == *" register "* ]]; then
  pool=$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(4000 * (s + w)) }')
  for cl in 1 64; do
    run "register: PUT /admin/certificates, $cl connections to $L" \
      "$BENCH" http-register --url "$(url "$L")" "${TLS[@]}" --clients "$cl" --seconds "$SECS" \
      --warmup "$WARMUP" --pool "$pool" --issuer "$C/pki/issuing.pfx" --target leader
    rate_row "PUT register" leader
  done
  run "register: PUT /admin/certificates, 64 connections over A, B, C" \
    "$BENCH" http-register "${ALL_URLS[@]}" "${TLS[@]}" --clients 64 --seconds "$SECS" \
    --warmup "$WARMUP" --pool "$pool" --issuer "$C/pki/issuing.pfx" --target spread
  rate_row "PUT register" spread
fi
lt=$(leader_term A)
[ "$lt" = "$LT0" ] || say "note: leader and term changed during the run: $LT0 -> $lt"

# ---- failover: kill -9 of the leader ----
if [[ $STEPS == *" failover "* ]]; then
  [ -n "${callers:-}" ] || { callers=$WORK/callers-0; register_callers "$callers"; }
  OLD=$L
  REST=$(for t in A B C; do [ "$t" = "$OLD" ] || echo "$t"; done | tr '\n' ' ')
  # new_leader: both survivors name the same leader, not the killed one
  new_leader() {
    local t l first=""
    for t in $REST; do
      l=$(leader_term "$t" | cut -d' ' -f1)
      case $l in "" | "(none)" | "$OLD") return 1 ;; esac
      [ -z "$first" ] && first=$l
      [ "$l" = "$first" ] || return 1
    done
  }
  SURVIVOR=${REST%% *}
  mkdir -p "$WORK/probe"
  say "failover: kill -9 of the leader $OLD ($REGISTERED certificates)"
  t0=$(date +%s.%N)
  kill -KILL "${PID[$OLD]}"
  wait "${PID[$OLD]}" 2>/dev/null || true
  wait_for 120 "a new leader" new_leader
  t1=$(date +%s.%N)
  wait_for 120 "a write committed through $SURVIVOR" "$CLI" admin-channel --data-dir \
    "$C/data/$SURVIVOR" generateClientCert failover-probe "$WORK/probe"
  t2=$(date +%s.%N)
  start_node "$OLD"
  wait_for 600 "$OLD serving again" known_everywhere "$callers.marker/0.pem"
  t3=$(date +%s.%N)
  secs() { awk -v a="$t0" -v b="$1" 'BEGIN { printf "%.2f", b - a }'; }
  echo "FAILOVER registered=$REGISTERED killed=$OLD leader_secs=$(secs "$t1")" \
    "write_secs=$(secs "$t2") rejoin_secs=$(secs "$t3")" >>"$RESULTS"
  say "new leader $(secs "$t1") s after kill -9, a write committed after $(secs "$t2") s, $OLD serving again after $(secs "$t3") s"
  row '%-10s %-7s %12s %12s %14s  %s\n' "registered" "killed" "leader secs" "write secs" \
    "rejoined secs" "(secs from kill -9 of the leader)"
  row '%-10s %-7s %12s %12s %14s\n\n' "$REGISTERED" "$OLD" "$(secs "$t1")" "$(secs "$t2")" \
    "$(secs "$t3")"
fi
say "RSS at the end: $(rss_all)"
stop_all

echo
echo "Corvid HTTPS API: 3 nodes on loopback, $(nproc) CPUs, ${SECS} s per row; leader $L"
cat "$TABLE"
echo "CPU: the measured node's CPU time over the row (all its threads; 100% = one core)."
echo "others: CPU used meanwhile by processes other than the 3 nodes and corvid-bench (the"
echo "machine is shared: a busy neighbour shows up here, and the row is worth less)."
echo "served: requests served with the revoked certificate after the DELETE returned."
[ "${BENCH_RESULTS:-}" = "" ] || cp "$RESULTS" "$BENCH_RESULTS"
