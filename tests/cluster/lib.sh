# Helpers for the multi-process cluster tests: real corvid-node processes, real TLS, real disk.
# Sourced by tests/cluster/*.sh. Needs CORVID_BIN (the build directory) and PORT_BASE.
set -euo pipefail

: "${CORVID_BIN:?CORVID_BIN must name the build directory}"
: "${PORT_BASE:?PORT_BASE must be set}"
# CORVID_PORT_OFFSET moves every port of every script, so that two checkouts (or a Release and
# an ASan run) can run the cluster tests side by side.
PORT_BASE=$((PORT_BASE + ${CORVID_PORT_OFFSET:-0}))
NODE="$CORVID_BIN/corvid-node"
CLI="$CORVID_BIN/corvid"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/corvid-cluster.XXXXXX")
TAGS_ALL="A B C D E"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*"; }
fail() {
  log "FAIL: $*"
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f"
    tail -n 30 "$f"
  done
  exit 1
}

cleanup() {
  local pids
  pids=$(cat "$WORK"/*.pid 2>/dev/null || true)
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

idx() { case "$1" in A) echo 1;; B) echo 2;; C) echo 3;; D) echo 4;; E) echo 5;; esac; }
http_port() { echo $((PORT_BASE + $(idx "$1"))); }
# host_of TAG: the node's address (a test that gives each node its own host redefines it).
host_of() { echo 127.0.0.1; }
raft_port() { echo $((PORT_BASE + 10 + $(idx "$1"))); }

# pki [DIR]: the cluster's root, issuing CA and node certificates for A..E.
pki() {
  local dir=${1:-$WORK/pki}
  "$CLI" pki init-cluster --out "$dir" \
    --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1,D=127.0.0.1,E=127.0.0.1 >/dev/null
}

# config TAG "BOOTSTRAP TAGS" [extra JSON lines]: writes $WORK/TAG.json.
config() {
  local tag=$1 members=$2 extra=${3:-} boot="" t
  for t in $members; do
    boot="$boot${boot:+,}{\"Tag\":\"$t\",\"ServerUrl\":\"https://$(host_of "$t"):$(http_port "$t")\",\"TcpUrl\":\"tls://$(host_of "$t"):$(raft_port "$t")\"}"
  done
  {
    echo "{"
    echo "  \"ServerUrl\": \"https://$(host_of "$tag"):$(http_port "$tag")\","
    echo "  \"ServerUrl.Tcp\": \"tls://$(host_of "$tag"):$(raft_port "$tag")\","
    echo "  \"DataDir\": \"data/$tag\","
    echo "  \"Security.Certificate.Path\": \"pki/$tag.pfx\","
    echo "  \"Security.ClusterCA.Path\": \"pki/issuing.pfx\","
    echo "  \"Security.MasterKey.Path\": \"pki/master.key\","
    echo "  \"Cluster.NodeTag\": \"$tag\","
    [ -n "$members" ] && echo "  \"Cluster.Bootstrap\": [$boot],"
    [ -n "$extra" ] && echo "  $extra,"
    echo "  \"Cluster.ElectionTimeoutInMs\": 1000,"
    echo "  \"Logs.Level\": \"Information\""
    echo "}"
  } >"$WORK/$tag.json"
}

start() {
  local tag=$1
  (cd "$WORK" && exec "$NODE" --config "$tag.json" >>"$WORK/$tag.log" 2>&1) &
  echo $! >"$WORK/$tag.pid"
}

alive() { [ -f "$WORK/$1.pid" ] && kill -0 "$(cat "$WORK/$1.pid")" 2>/dev/null; }

# stop TAG: SIGTERM, then waits; the node must exit 0 (clean shutdown, no leak).
stop() {
  local tag=$1 pid rc=0
  pid=$(cat "$WORK/$tag.pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  rm -f "$WORK/$tag.pid"
  [ "$rc" = 0 ] || fail "node $tag exited with $rc after SIGTERM"
}

kill9() {
  local tag=$1 pid
  pid=$(cat "$WORK/$tag.pid")
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$WORK/$tag.pid"
}

admin() { local tag=$1; shift; "$CLI" admin-channel --data-dir "$WORK/data/$tag" "$@"; }

# field TAG NAME: one value of `info`.
field() { admin "$1" info 2>/dev/null | sed -n "s/^$2: //p"; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls every 0.1 s.
wait_until() {
  local secs=$1 what=$2 end
  shift 2
  end=$(($(date +%s%N) + secs * 1000000000))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.1
  done
}

# leader_of TAGS...: the leader tag all given nodes agree on, or nothing.
leader_of() {
  local t l first=""
  for t in "$@"; do
    l=$(field "$t" Leader)
    case "$l" in ""|"(none)") return 1;; esac
    [ -z "$first" ] && first=$l
    [ "$l" = "$first" ] || return 1
  done
  echo "$first"
}
has_leader() { leader_of "$@" >/dev/null; }

# ready TAGS...: everything a client of the given nodes needs. They agree on a leader, which is
# in state Leader; every one of them has the issuing CA and the node record of every given node
# (a follower redirects to the leader's URL from it), and has caught up (serves authenticated
# requests: its own catch-up entry was committed through a ready leader and applied).
ready() {
  local l t m out records
  l=$(leader_of "$@") || return 1
  for t in "$@"; do
    out=$(admin "$t" info 2>/dev/null) || return 1
    [ "$t" != "$l" ] || grep -qx 'State: Leader' <<<"$out" || return 1
    grep -qx 'IssuingCA: yes' <<<"$out" || return 1
    grep -qx 'Serving: yes' <<<"$out" || return 1
    records=" $(sed -n 's/^NodeRecords: //p' <<<"$out") "
    for m in "$@"; do
      case $records in *" $m "*) ;; *) return 1 ;; esac
    done
  done
}

applied() { field "$1" AppliedIndex; }
hash_of() { field "$1" StateHash; }

# same_state TAGS...: every given node serves, with equal applied index and state hash.
same_state() {
  local t out h first=""
  for t in "$@"; do
    out=$(admin "$t" info 2>/dev/null) || return 1
    grep -qx 'Serving: yes' <<<"$out" || return 1
    h="$(sed -n 's/^AppliedIndex: //p' <<<"$out")/$(sed -n 's/^StateHash: //p' <<<"$out")"
    [ -z "$first" ] && first=$h
    [ "$h" = "$first" ] || return 1
  done
}

# all_kept BASE ACKED: A B C reach the same state, each with BASE + ACKED registrations (every
# acknowledged write kept, nothing else added).
all_kept() {
  local t want=$(($1 + $2))
  wait_until 60 "the same state on A B C" same_state A B C
  for t in A B C; do
    [ "$(field "$t" Certificates)" = "$want" ] ||
      fail "$t has $(field "$t" Certificates) registrations, want $want ($2 acknowledged)"
  done
}

# gen TAG NAME: a client certificate generated through node TAG (a committed command).
gen() {
  mkdir -p "$WORK/out"
  admin "$1" generateClientCert "$2" "$WORK/out" >/dev/null
}

# ---- HTTPS as a client: $CERTS/NAME.pem holds a client certificate and its key ----
CERTS="$WORK/c"
url() { echo "https://$(host_of "$1"):$(http_port "$1")$2"; }
# call NAME METHOD NODE PATH [BODY]: status into $CODE, body into $WORK/last.body (follows 307)
call() {
  local who=$1 method=$2 node=$3 path=$4 body=${5:-}
  CODE=$(curl -s -L -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" \
    --cert "$CERTS/$who.pem" -X "$method" ${body:+-H 'Content-Type: application/json' -d "$body"} \
    "$(url "$node" "$path")" || true)
}
# not_ready: the last call was answered 503 NotReady (before anything was proposed)
not_ready() { [ "$CODE" = 503 ] && grep -q '"Type":"NotReady"' "$WORK/last.body"; }
# must STATUS NAME METHOD NODE PATH [BODY]: call, and fail unless the answer is STATUS. A 503
# NotReady (answered before anything is proposed) is asked again for up to 30 s, as RavenDB's
# clients do: on a loaded machine a node's read lease can lapse for a moment.
must() {
  local want=$1 end=$(($(date +%s) + 30))
  shift
  call "$@"
  while [ "$want" != 503 ] && not_ready && [ "$(date +%s)" -lt "$end" ]; do
    sleep 0.1
    call "$@"
  done
  [ "$CODE" = "$want" ] || fail "$* -> $CODE (want $want): $(head -c 400 "$WORK/last.body")"
}
# mint NAME CLEARANCE [PERMISSIONS]: $CERTS/NAME.pem (and z-NAME/NAME.crt, .key), generated
# through node $MINT_ON (A) as $MINT_AS (node: A's own certificate)
mint() {
  [ -f "$CERTS/node.pem" ] || { mkdir -p "$CERTS" && cp "$WORK/pki/A.pem" "$CERTS/node.pem"; }
  must 200 "${MINT_AS:-node}" POST "${MINT_ON:-A}" /admin/certificates "{\"Name\":\"$1\",\"SecurityClearance\":\"$2\",\"Permissions\":${3:-{\}}}"
  (cd "$CERTS" && rm -rf "z-$1" && mkdir "z-$1" && cd "z-$1" && unzip -q "$WORK/last.body" &&
    cat "$1.crt" "$1.key" >"$CERTS/$1.pem") || fail "mint $1"
}
# tp NAME: the SHA-1 thumbprint of $CERTS/NAME.pem, upper case
tp() { openssl x509 -in "$CERTS/$1.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }

# impostor PEM ID CLAIMED TARGET: a TLS connection to TARGET's Raft port with PEM's certificate,
# whose preamble claims to be node ID (tag CLAIMED) at CLAIMED's Raft address.
impostor() {
  local pem=$1 id=$2 claimed=$3 target=$4 addr
  addr="127.0.0.1:$(raft_port "$claimed")"
  {
    printf 'CVRAFT01\0\0\0\0\0\0\0'
    printf "\\$(printf '%03o' "$id")"
    printf '\0\0\0\0\0\0\0'
    printf "\\$(printf '%03o' "${#addr}")"
    printf '%s' "$addr"
  } >"$WORK/pre.bin"
  timeout 10 openssl s_client -connect "127.0.0.1:$(raft_port "$target")" -tls1_3 \
    -cert "$pem" -key "$pem" -quiet <"$WORK/pre.bin" >/dev/null 2>&1 || true
}

# node_cert TAGS NAME START END [PASSWORD]: $WORK/NAME.pfx (and .crt, .key), a certificate for
# the nodes TAGS ("B", or "A B C" for one the whole cluster shares; 127.0.0.1) from the
# cluster's issuing CA, valid from START to END (`date -d` words), made with openssl ca as an
# operator would.
node_cert() {
  local tag=${1// /} name=$2 t uris=""
  for t in $1; do uris="$uris, URI:urn:corvid:node:$t"; done
  mkdir -p "$WORK/ca"
  [ -f "$WORK/ca/index.txt" ] || : >"$WORK/ca/index.txt"
  cat >"$WORK/ca/$tag.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $WORK/ca/index.txt
new_certs_dir = $WORK/ca
rand_serial = yes
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1$uris
EOF
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$name.key" \
    -subj "/CN=Corvid Node $tag" -out "$WORK/$name.csr" 2>/dev/null || fail "openssl req $name"
  openssl ca -batch -config "$WORK/ca/$tag.cnf" -extensions ext -notext -in "$WORK/$name.csr" \
    -cert "$WORK/pki/issuing.crt" -keyfile "$WORK/pki/issuing.key" \
    -startdate "$(date -u -d "$3" +%Y%m%d%H%M%SZ)" -enddate "$(date -u -d "$4" +%Y%m%d%H%M%SZ)" \
    -out "$WORK/$name.crt" 2>/dev/null || fail "openssl ca $name"
  openssl pkcs12 -export -passout "pass:${5:-}" -inkey "$WORK/$name.key" -in "$WORK/$name.crt" \
    -certfile "$WORK/pki/issuing.crt" -out "$WORK/$name.pfx" || fail "openssl pkcs12 $name"
}

# clearance_of NODE THUMB: what node NODE has registered THUMB as (asked as admin): ClusterNode,
# …, or none.
clearance_of() {
  call admin GET "$1" "/admin/certificates?thumbprint=$2"
  case $CODE in
    404) echo none ;;
    200) python3 -c "import json; r=json.load(open('$WORK/last.body'))['Results']; print(r[0]['SecurityClearance'] if r else 'none')" ;;
    *) echo "HTTP $CODE" ;;
  esac
}

# load_start NAME TAGS...: a client per node, as NAME ($CERTS/NAME.pem), each request on a new
# connection (a new TLS handshake), until load_stop WHAT, which fails unless every request was
# answered 200.
load_start() {
  local who=$1 t
  shift
  rm -f "$WORK/load.stop" "$WORK/load.fail" "$WORK"/load.*.count
  LOAD_PIDS=""
  for t in "$@"; do
    (
      i=0
      while [ ! -f "$WORK/load.stop" ]; do
        code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" \
          --cert "$CERTS/$who.pem" "$(url "$t" /certificates/whoami)" 2>>"$WORK/load.err" || true)
        i=$((i + 1))
        [ "$code" = 200 ] || echo "$t $code" >>"$WORK/load.fail"
        echo "$i" >"$WORK/load.$t.count"
      done
    ) &
    LOAD_PIDS="$LOAD_PIDS $!"
  done
  trap 'touch "$WORK/load.stop"; kill $LOAD_PIDS 2>/dev/null || true; cleanup' EXIT
  for t in "$@"; do wait_until 30 "the client of $t running" test -s "$WORK/load.$t.count"; done
}
load_stop() {
  touch "$WORK/load.stop"
  wait $LOAD_PIDS
  [ ! -s "$WORK/load.fail" ] ||
    fail "failed requests during $1: $(sort "$WORK/load.fail" | uniq -c) $(sort "$WORK/load.err" | uniq -c | head)"
  log "$(($(cat "$WORK"/load.*.count | paste -sd+))) requests during $1, none failed"
}

# start_cluster TAGS...: pki, configurations (with the JSON lines of $CLUSTER_EXTRA, if set),
# the nodes, and a leader ready on all of them.
start_cluster() {
  pki
  local t
  for t in "$@"; do config "$t" "$*" "${CLUSTER_EXTRA:-}"; done
  for t in "$@"; do start "$t"; done
  wait_until 60 "a leader on $*" ready "$@"
}
