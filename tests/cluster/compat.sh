#!/usr/bin/env bash
# RavenDB's official Node.js client against three nodes: tests/compat/client.test.js runs the
# client's own operations (topology, certificates, refusals, failover, two-factor sessions, the
# server certificate's replacement);
# this script starts the cluster and stops or starts the node the client asks for. The client
# is installed from tests/compat/package-lock.json (tests/compat/install.sh, a no-op when
# current). COMPAT_SKIP_2FA=1 leaves out the two-factor section.
. "$(dirname "$0")/lib.sh"
COMPAT=$(cd "$(dirname "$0")/../compat" && pwd)
# The client's HTTP library (undici 7) needs Node.js 20.18.1 or later; Debian 12's own nodejs 18
# loads it, then never presents the client certificate.
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' ||
  fail "RavenDB's Node.js client needs Node.js 20.18 or later; this is $(node --version 2>&1)"
"$COMPAT/install.sh" || fail "cannot install the client (tests/compat/install.sh)"

start_cluster A B C
gen A compat-admin
mkdir -p "$WORK/compat"
nodes=""
for t in A B C; do nodes="$nodes${nodes:+,}$t=$(url "$t" "")"; done

# led_by_one_of TAGS...: the given nodes agree on a leader that is one of them, and serve
# (ready alone takes the leader they last heard of, which may be the node just stopped).
led_by_one_of() {
  local l
  l=$(leader_of "$@") && [[ " $* " == *" $l "* ]] && ready "$@"
}

# The client writes "corvid-compat: stop TAG" or "start TAG" and waits for "done": a stopped
# node exits cleanly and the other two lead and serve; a started one serves with the others.
# one certificate for the whole cluster, for the client's ReplaceClusterCertificateOperation
node_cert "A B C" compat-cluster '-1 hour' '+90 days'
coproc CLIENT {
  COMPAT_CLUSTER_PFX="$WORK/compat-cluster.pfx" COMPAT_CLUSTER_CRT="$WORK/compat-cluster.crt" \
    COMPAT_NODES=$nodes COMPAT_ADMIN_PFX="$WORK/out/compat-admin.pfx" \
    COMPAT_CA="$WORK/pki/ca-chain.crt" COMPAT_WORK="$WORK/compat" \
    exec node "$COMPAT/client.test.js" 2>&1
}
client_pid=$CLIENT_PID
echo "$client_pid" >"$WORK/client.pid" # killed by lib.sh's cleanup if this script fails
exec {from_client}<&"${CLIENT[0]}" {to_client}>&"${CLIENT[1]}"
while IFS= read -r line <&"$from_client"; do
  case $line in
    "corvid-compat: stop "[A-C])
      tag=${line##* }
      stop "$tag"
      wait_until 60 "a leader among the other nodes" led_by_one_of $(echo A B C | tr -d "$tag")
      echo done >&"$to_client"
      ;;
    "corvid-compat: start "[A-C])
      tag=${line##* }
      start "$tag"
      wait_until 60 "node $tag serving again" ready A B C
      echo done >&"$to_client"
      ;;
    "corvid-compat: "*) fail "the client asked for something unknown: $line" ;;
    *) echo "$line" ;;
  esac
done
rc=0
wait "$client_pid" || rc=$?
rm -f "$WORK/client.pid"
[ "$rc" = 0 ] || fail "RavenDB's client test failed (exit $rc)"
log "PASS: RavenDB's Node.js client against three nodes"
