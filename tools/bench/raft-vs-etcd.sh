#!/usr/bin/env bash
# Trust-state commands committed per second on a real 3-node Corvid cluster, next to etcd 3.4
# (Debian's etcd-server, 3 members, mutual TLS on client and peer ports) measured the same way
# in the same run: 1 and 64 commands in flight, to the leader and through the other nodes.
#
#   tools/bench/raft-vs-etcd.sh                 install what is missing, build, measure
#   BENCH_SECONDS=10 tools/bench/raft-vs-etcd.sh   a longer window per row (default 5 s)
#   BENCH_NO_BUILD=1 tools/bench/raft-vs-etcd.sh   use build/release as it is
#   BENCH_SYSTEMS=corvid ...                       only one side (corvid, etcd)
#   BENCH_CORVID_EXTRA='"Cluster.SnapshotThreshold": 100000,' ...   extra node config keys
#   BENCH_JSON=1 ...                               also etcd's JSON gateway (HTTP/1.1)
#   BENCH_CORVID_PORT=28080 BENCH_ETCD_PORT=23790  port bases (+1..3 and +11..13)
#
# Corvid: `corvid-bench raft` registers distinct client certificates with trustClientCert over
# the nodes' admin channels (each answer comes after the entry is committed and applied there);
# `corvid-bench http-register` does the same with PUT /admin/certificates over HTTPS (corvid-http).
# etcd:   `corvid-bench etcd` puts 256-byte values with gRPC KV/Put over HTTP/2 + mTLS (each
# answer comes after the entry is committed). The clusters run one at a time, on loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--help]  (settings come from BENCH_* variables)" >&2; exit 2 ;;
esac
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
# Certificates for the Corvid rows (each registration uses a new one): enough for ~5,000/s and
# ~4,000/s sustained over the rows that draw on each pool; a run that uses one up says so.
POOL_CA=${BENCH_POOL:-$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(12000 * (s + w)) }')}
POOL_EXT=${BENCH_POOL_EXT:-$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(5000 * (s + w)) }')}
BUILD=$ROOT/build/release
CORVID_PORT=${BENCH_CORVID_PORT:-28080} # HTTP +1..3, Raft +11..13
ETCD_PORT=${BENCH_ETCD_PORT:-23790}     # client +1..3, peer +11..13

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- packages and build ----
# shellcheck source=SCRIPTDIR/../lib/deps.sh
. "$ROOT/tools/lib/deps.sh"
# shellcheck disable=SC2086
corvid_install_packages $CORVID_BUILD_PACKAGES etcd-server etcd-client
if [ "${BENCH_NO_BUILD:-}" = "" ]; then
  say "building Corvid (Release) in $BUILD"
  mkdir -p "$ROOT/build"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-DNDEBUG \
    -DCORVID_TESTS=OFF >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
  cmake --build "$BUILD" -j2 --target corvid-node corvid corvid-bench >"$BUILD.build.log" 2>&1 ||
    { tail -n 40 "$BUILD.build.log"; exit 1; }
fi
NODE=$BUILD/corvid-node CLI=$BUILD/corvid BENCH=$BUILD/corvid-bench
for b in "$NODE" "$CLI" "$BENCH"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done
ETCD=$(command -v etcd) ETCDCTL=$(command -v etcdctl)

# The loopback ports must be free: another cluster on them would be measured instead.
for port in $(seq $((CORVID_PORT + 1)) $((CORVID_PORT + 3))) $(seq $((CORVID_PORT + 11)) $((CORVID_PORT + 13))) \
  $(seq $((ETCD_PORT + 1)) $((ETCD_PORT + 3))) $(seq $((ETCD_PORT + 11)) $((ETCD_PORT + 13))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; set BENCH_CORVID_PORT / BENCH_ETCD_PORT to other bases" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/corvid-vs-etcd.XXXXXX")
PIDS=""
cleanup() {
  stop_all
  case "${POOLS:-}" in /dev/shm/*) rm -rf "$POOLS" ;; esac
  if [ "${BENCH_KEEP:-}" = "" ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_all: SIGTERM to every process started so far, then wait for them (KILL after 5 s).
stop_all() {
  local p
  for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $PIDS; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=""
}

# wait_for SECONDS WHAT COMMAND...
wait_for() {
  local end=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { say "timed out waiting for $what"; tail -n 20 "$WORK"/*.log >&2; exit 1; }
    sleep 0.2
  done
}

RESULTS=$WORK/results
: >"$RESULTS"
# run LABEL COMMAND...: runs one load generator, keeps its RESULT line.
run() {
  local out rc=0
  say "$1"
  shift
  out=$("$@") || rc=$?
  echo "$out" >"$WORK/last.out"
  echo "$out" | grep -v '^RESULT\|^POOL' | sed 's/^/    /' >&2
  # a run with failed commands still reports (its errors column says so); no report is fatal
  echo "$out" | grep '^RESULT' >>"$RESULTS" || { say "FAILED (exit $rc): $*"; exit 1; }
}

SYSTEMS=" ${BENCH_SYSTEMS:-corvid etcd} "
# ---- Corvid ----
if [[ $SYSTEMS == *" corvid "* ]]; then
say "Corvid: PKI and 3 nodes in $WORK/corvid"
C=$WORK/corvid
mkdir -p "$C"
"$CLI" pki init-cluster --out "$C/pki" --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 >/dev/null
i=0
boot=""
for t in A B C; do
  i=$((i + 1))
  boot="$boot${boot:+,}{\"Tag\":\"$t\",\"ServerUrl\":\"https://127.0.0.1:$((CORVID_PORT + i))\",\"TcpUrl\":\"tls://127.0.0.1:$((CORVID_PORT + 10 + i))\"}"
done
i=0
for t in A B C; do
  i=$((i + 1))
  cat >"$C/$t.json" <<EOF
{
  "ServerUrl": "https://127.0.0.1:$((CORVID_PORT + i))",
  "ServerUrl.Tcp": "tls://127.0.0.1:$((CORVID_PORT + 10 + i))",
  "DataDir": "data/$t",
  "Security.Certificate.Path": "pki/$t.pfx",
  "Security.ClusterCA.Path": "pki/issuing.pfx",
  "Security.MasterKey.Path": "pki/master.key",
  "Cluster.NodeTag": "$t",
  "Cluster.Bootstrap": [$boot],
  ${BENCH_CORVID_EXTRA:-}
  "Logs.Level": "Warning"
}
EOF
done
for t in A B C; do
  (cd "$C" && exec "$NODE" --config "$t.json" >"$WORK/corvid-$t.log" 2>&1) &
  PIDS="$PIDS $!"
done
field() { "$CLI" admin-channel --data-dir "$C/data/$1" info 2>/dev/null | sed -n "s/^$2: //p"; }
corvid_ready() {
  local l
  l=$(field A Leader)
  case "$l" in A|B|C) ;; *) return 1 ;; esac
  [ "$(field "$l" State)" = Leader ] && [ "$(field "$l" Certificates)" -ge 1 ] &&
    [ "$(field B Leader)" = "$l" ] && [ "$(field C Leader)" = "$l" ]
}
wait_for 30 "a Corvid leader" corvid_ready
L=$(field A Leader)
F=$(for t in A B C; do [ "$t" = "$L" ] || echo "$t"; done | head -n 1)
sock() { echo "$C/data/$1/admin.sock"; }
ALL_SOCKS="--socket $(sock A) --socket $(sock B) --socket $(sock C)"
say "Corvid leader: $L, follower used: $F"
# Certificate pools on tmpfs when there is one (the node reads each file once; a disk would
# measure ext4's inode allocation instead): "ca" from the cluster's issuing CA, "ext" from a CA
# the cluster does not know (a certificate from outside, what trustClientCert is for).
POOLS=$WORK/certs
if [ -d /dev/shm ] && [ -w /dev/shm ]; then POOLS=$(mktemp -d /dev/shm/corvid-vs-etcd.XXXXXX); fi
say "generating $POOL_CA + $POOL_EXT client certificates in $POOLS"
"$BENCH" raft --generate --pool "$POOL_CA" --dir "$POOLS/ca" --issuer "$C/pki/issuing.pfx" |
  sed 's/^/    /' >&2
"$BENCH" raft --generate --pool "$POOL_EXT" --dir "$POOLS/ext" | sed 's/^/    /' >&2
declare -A NEXT=([ca]=0 [ext]=0)
declare -A SIZE=([ca]=$POOL_CA [ext]=$POOL_EXT)
# corvid_run LABEL POOL SYSTEM CLIENTS TARGET SOCKET-ARGS...
corvid_run() {
  local label=$1 pool=$2 system=$3 clients=$4 target=$5
  shift 5
  if [ $((SIZE[$pool] - NEXT[$pool])) -lt "$clients" ]; then
    say "the '$pool' certificates are used up: raise BENCH_POOL (ca) or BENCH_POOL_EXT (ext)"
    exit 1
  fi
  run "$label" "$BENCH" raft --seconds "$SECS" --warmup "$WARMUP" --clients "$clients" \
    --dir "$POOLS/$pool" --first "${NEXT[$pool]}" --pool $((SIZE[$pool] - NEXT[$pool])) \
    --target "$target" --system "$system" "$@"
  NEXT[$pool]=$(sed -n 's/^POOL next=//p' "$WORK/last.out")
}
corvid_run "Corvid, 1 in flight, leader $L" ca corvid 1 leader --socket "$(sock "$L")"
corvid_run "Corvid, 1 in flight, leader $L, outside certificates" ext corvid-ext 1 leader \
  --socket "$(sock "$L")"
corvid_run "Corvid, 1 in flight, follower $F" ca corvid 1 follower --socket "$(sock "$F")"
corvid_run "Corvid, 64 in flight, leader $L" ca corvid 64 leader --socket "$(sock "$L")"
corvid_run "Corvid, 64 in flight, leader $L, outside certificates" ext corvid-ext 64 leader \
  --socket "$(sock "$L")"
# shellcheck disable=SC2086
corvid_run "Corvid, 64 in flight, spread over A, B, C" ca corvid 64 spread $ALL_SOCKS
# The same registrations through the HTTPS API: PUT /admin/certificates (RavenDB's body, the
# certificate inline), node A's certificate as the caller, each answered 201 once applied there.
https_url() { case "$1" in A) echo "https://127.0.0.1:$((CORVID_PORT + 1))";; B) echo "https://127.0.0.1:$((CORVID_PORT + 2))";; C) echo "https://127.0.0.1:$((CORVID_PORT + 3))";; esac; }
http_common=(--cacert "$C/pki/ca-chain.crt" --cert "$C/pki/A.pem" --issuer "$C/pki/issuing.pfx"
  --seconds "$SECS" --warmup "$WARMUP" --system corvid-http)
HPOOL1=$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(1000 * (s + w)) }')
HPOOL64=$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(4000 * (s + w)) }')
run "Corvid HTTPS PUT, 1 in flight, leader $L" "$BENCH" http-register "${http_common[@]}" \
  --clients 1 --pool "$HPOOL1" --url "$(https_url "$L")" --target leader
run "Corvid HTTPS PUT, 1 in flight, follower $F" "$BENCH" http-register "${http_common[@]}" \
  --clients 1 --pool "$HPOOL1" --url "$(https_url "$F")" --target follower
run "Corvid HTTPS PUT, 64 in flight, leader $L" "$BENCH" http-register "${http_common[@]}" \
  --clients 64 --pool "$HPOOL64" --url "$(https_url "$L")" --target leader
run "Corvid HTTPS PUT, 64 in flight, spread over A, B, C" "$BENCH" http-register \
  "${http_common[@]}" --clients 64 --pool "$HPOOL64" --url "$(https_url A)" --url "$(https_url B)" \
  --url "$(https_url C)" --target spread
say "Corvid now holds $(field "$L" Certificates) certificates"
[ "$(field "$L" State)" = Leader ] || say "note: Corvid's leadership changed during the run"
stop_all
fi

# ---- etcd ----
if [[ $SYSTEMS == *" etcd "* ]]; then
say "etcd: PKI and 3 members in $WORK/etcd"
E=$WORK/etcd
mkdir -p "$E"
"$CLI" pki init-cluster --out "$E/pki" --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 >/dev/null
# the load generator's client certificate: EC P-256, clientAuth, from the same issuing CA
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench \
  -keyout "$E/pki/client.key" -out "$E/pki/client.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$E/pki/client.ext"
openssl x509 -req -in "$E/pki/client.csr" -CA "$E/pki/issuing.crt" -CAkey "$E/pki/issuing.key" \
  -CAcreateserial -days 2 -sha256 -extfile "$E/pki/client.ext" -out "$E/pki/client.crt" 2>/dev/null
cluster=""
i=0
for t in A B C; do
  i=$((i + 1))
  cluster="$cluster${cluster:+,}$t=https://127.0.0.1:$((ETCD_PORT + 10 + i))"
done
i=0
for t in A B C; do
  i=$((i + 1))
  "$ETCD" --name "$t" --data-dir "$E/data/$t" \
    --listen-client-urls "https://127.0.0.1:$((ETCD_PORT + i))" \
    --advertise-client-urls "https://127.0.0.1:$((ETCD_PORT + i))" \
    --listen-peer-urls "https://127.0.0.1:$((ETCD_PORT + 10 + i))" \
    --initial-advertise-peer-urls "https://127.0.0.1:$((ETCD_PORT + 10 + i))" \
    --initial-cluster "$cluster" --initial-cluster-token corvid-bench --initial-cluster-state new \
    --cert-file "$E/pki/$t.pem" --key-file "$E/pki/$t.pem" --client-cert-auth \
    --trusted-ca-file "$E/pki/ca-chain.crt" \
    --peer-cert-file "$E/pki/$t.pem" --peer-key-file "$E/pki/$t.pem" --peer-client-cert-auth \
    --peer-trusted-ca-file "$E/pki/ca-chain.crt" \
    --logger zap --log-level warn >"$WORK/etcd-$t.log" 2>&1 &
  PIDS="$PIDS $!"
done
EPS="https://127.0.0.1:$((ETCD_PORT + 1)),https://127.0.0.1:$((ETCD_PORT + 2)),https://127.0.0.1:$((ETCD_PORT + 3))"
ectl() {
  "$ETCDCTL" --endpoints "$EPS" --cacert "$E/pki/ca-chain.crt" --cert "$E/pki/client.crt" \
    --key "$E/pki/client.key" --command-timeout 3s "$@"
}
# endpoint, ID, version, db size, is leader, is learner, term, index, applied index, errors
etcd_leader() { ectl endpoint status 2>/dev/null | awk -F', ' '$5 == "true" { sub("https://", "", $1); print $1 }'; }
etcd_ready() { [ -n "$(etcd_leader)" ] && ectl put corvid-bench/ready 1; }
wait_for 30 "an etcd leader" etcd_ready
EL=$(etcd_leader)
EF=$(for i in 1 2 3; do echo "127.0.0.1:$((ETCD_PORT + i))"; done | grep -vx "$EL" | head -n 1)
say "etcd leader: $EL"
tls=(--cacert "$E/pki/ca-chain.crt" --cert "$E/pki/client.crt" --key "$E/pki/client.key")
ecommon=(--seconds "$SECS" --warmup "$WARMUP" --value-size 256 "${tls[@]}")
ALL_EPS="--endpoint 127.0.0.1:$((ETCD_PORT + 1)) --endpoint 127.0.0.1:$((ETCD_PORT + 2)) --endpoint 127.0.0.1:$((ETCD_PORT + 3))"
run "etcd, 1 in flight, leader $EL" "$BENCH" etcd "${ecommon[@]}" --clients 1 \
  --endpoint "$EL" --target leader
run "etcd, 1 in flight, follower $EF" "$BENCH" etcd "${ecommon[@]}" --clients 1 \
  --endpoint "$EF" --target follower
run "etcd, 64 in flight, leader $EL" "$BENCH" etcd "${ecommon[@]}" --clients 64 \
  --endpoint "$EL" --target leader
# shellcheck disable=SC2086
run "etcd, 64 in flight, spread over the 3 members" "$BENCH" etcd "${ecommon[@]}" --clients 64 \
  $ALL_EPS --target spread
if [ "${BENCH_JSON:-}" != "" ]; then
  # etcd's JSON gateway (HTTP/1.1 keep-alive): an extra gRPC hop inside etcd, so slower
  run "etcd JSON gateway, 1 in flight, leader $EL" "$BENCH" etcd "${ecommon[@]}" --api json \
    --clients 1 --endpoint "$EL" --target leader
  run "etcd JSON gateway, 64 in flight, leader $EL" "$BENCH" etcd "${ecommon[@]}" --api json \
    --clients 64 --endpoint "$EL" --target leader
fi
[ "$(etcd_leader)" = "$EL" ] || say "note: etcd's leadership changed during the run"
stop_all
fi

# ---- the table ----
echo
echo "Corvid trustClientCert vs etcd 3.4 put: 3 nodes on loopback, $(nproc) CPUs, ${SECS} s per row"
awk '
  { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] }
    key = v[NR, "target"] "/" v[NR, "clients"]
    if (v[NR, "system"] == "etcd") { erate[key] = v[NR, "rate"]; ep99[key] = v[NR, "p99"] } }
  END {
    printf "%-11s %-8s %7s %7s %8s %8s %8s %6s %10s %10s\n", "system", "target", "clients",
      "ops", "rate/s", "p50 ms", "p99 ms", "errors", "rate/etcd", "p99/etcd"
    for (r = 1; r <= NR; r++) {
      key = v[r, "target"] "/" v[r, "clients"]
      rr = ""; pr = ""
      if (v[r, "system"] != "etcd" && erate[key] > 0) {
        rr = sprintf("%.2fx", v[r, "rate"] / erate[key])
        pr = sprintf("%.2fx", v[r, "p99"] / ep99[key])
      }
      printf "%-11s %-8s %7d %7d %8.0f %8.2f %8.2f %6d %10s %10s\n", v[r, "system"],
        v[r, "target"], v[r, "clients"], v[r, "ops"], v[r, "rate"], v[r, "p50"], v[r, "p99"],
        v[r, "errors"], rr, pr
    }
  }' "$RESULTS"
echo "corvid: trustClientCert over the admin channel, certificates from the cluster's issuing CA;"
echo "corvid-ext: the same with certificates from a CA the cluster does not know; corvid-http:"
echo "PUT /admin/certificates over HTTPS (mutual TLS, keep-alive), issuing-CA certificates."
echo "target: leader = every connection to the leader; follower = to one follower (forwarded to"
echo "the leader); spread = connections round-robin over the 3 nodes."
[ "${BENCH_JSON:-}" = "" ] || echo "etcd-json (etcd's JSON gateway) is compared with etcd over gRPC."
