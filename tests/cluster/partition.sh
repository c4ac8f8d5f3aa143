#!/usr/bin/env bash
# Network partitions and the revocation promise: once a DELETE returned, no node answers 200
# for the revoked certificate, not even one the partition cut off from the leader.
#
# Each node runs in its own network namespace (10.78.0.N), on a bridge whose address
# (10.78.0.254) is the test's client; nftables on the bridge cuts nodes apart while the client
# still reaches every node. All of it lives in a private network and mount namespace made for
# this run (unshare): nothing outside it changes, and it vanishes with the run.
#  (a) a follower cut off from the leader; a revocation through the leader; the follower never
#      answers 200 for it, then catches up after the partition heals.
#  (b) the leader cut off into a minority; a revocation through the majority's new leader; the
#      old leader never answers 200 for it.
set -euo pipefail
if [ -z "${CORVID_PARTITION_INNER:-}" ]; then
  for tool in unshare ip nft curl; do
    command -v "$tool" >/dev/null || { echo "partition.sh: needs $tool (nftables, iproute2)" >&2; exit 1; }
  done
  CORVID_PARTITION_INNER=1 exec unshare --mount --net --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

NET=10.78.0
host_of() { echo "$NET.$(idx "$1")"; }
TAGS="A B C"

# ---- the network: a bridge, and a namespace per node behind a veth ----
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns # private to this mount namespace: hides the machine's own
ip link set lo up
ip link add br0 type bridge
ip addr add "$NET.254/24" dev br0
ip link set br0 up
for t in $TAGS; do
  ip netns add "cv$t"
  ip link add "veth$t" type veth peer name eth0 netns "cv$t"
  ip link set "veth$t" master br0 up
  ip -n "cv$t" addr add "$(host_of "$t")/24" dev eth0
  ip -n "cv$t" link set eth0 up
  ip -n "cv$t" link set lo up
done
nft add table bridge part
nft add chain bridge part cut '{ type filter hook forward priority 0; policy accept; }'

# split_off X "Y...": drops every packet between X and each Y, both ways (the bridge forwards
# node-to-node traffic; the client's own traffic to a node is not forwarded, so it passes).
split_off() {
  local x=$1 y
  for y in $2; do
    nft add rule bridge part cut ip saddr "$(host_of "$x")" ip daddr "$(host_of "$y")" drop
    nft add rule bridge part cut ip saddr "$(host_of "$y")" ip daddr "$(host_of "$x")" drop
  done
  log "partition: $x cut off from $2"
}
heal() {
  nft flush chain bridge part cut
  log "partition healed"
}

start_ns() {
  local tag=$1
  (cd "$WORK" && exec ip netns exec "cv$tag" "$NODE" --config "$tag.json" >>"$WORK/$tag.log" 2>&1) &
  echo $! >"$WORK/$tag.pid"
}

# whoami NAME TAG: the status of GET /certificates/whoami on a new connection.
whoami() {
  curl -s -o "$WORK/who.body" -w '%{http_code}' --max-time 20 --cacert "$WORK/pki/ca-chain.crt" \
    --cert "$CERTS/$1.pem" "$(url "$2" /certificates/whoami)" || echo 000
}
accepted_on() { [ "$(whoami "$1" "$2")" = 200 ]; }
accepted_everywhere() { local t; for t in $TAGS; do accepted_on "$1" "$t" || return 1; done; }
refused_everywhere() {
  local t c
  for t in $TAGS; do
    c=$(whoami "$1" "$t")
    [ "$c" = 204 ] || [ "$c" = 401 ] || [ "$c" = 403 ] || return 1
  done
}
# not_serving TAG: the node answers 503 NotReady (holds no read lease).
not_serving() { [ "$(whoami other "$1")" = 503 ]; }
# revoke NAME TAG: DELETE through node TAG; prints how long the call took, in ms.
revoke() {
  local t0 t1
  t0=$(date +%s%N)
  must 204 node DELETE "$2" "/admin/certificates?thumbprint=$(tp "$1")"
  t1=$(date +%s%N)
  log "DELETE of $1 through $2 returned after $(((t1 - t0) / 1000000)) ms"
}
# never_accepted NAME TAG: polls TAG with NAME's certificate until TAG has answered 503 for
# 20 polls in a row (it knows it is cut off); fails on any 200. At most 60 s.
never_accepted() {
  local name=$1 tag=$2 c streak=0 polls=0 end
  end=$(($(date +%s) + 60))
  while [ "$streak" -lt 20 ]; do
    c=$(whoami "$name" "$tag")
    polls=$((polls + 1))
    [ "$c" != 200 ] || fail "node $tag accepted $name after its revocation returned (poll $polls): $(cat "$WORK/who.body")"
    if [ "$c" = 503 ]; then streak=$((streak + 1)); else streak=0; fi
    [ "$(date +%s)" -lt "$end" ] || fail "node $tag never answered 503 for 20 polls in a row within 60 s (last: $c)"
  done
  log "node $tag refused $name in all $polls polls (last 20: 503 NotReady)"
}
# through_heal NAME TAG: heals the partition and polls TAG with NAME's certificate until TAG
# has caught up and serves again (accepts `other`); fails on any 200 for NAME. At most 120 s.
through_heal() {
  local name=$1 tag=$2 c polls=0 end
  heal
  end=$(($(date +%s) + 120))
  while :; do
    c=$(whoami "$name" "$tag")
    polls=$((polls + 1))
    [ "$c" != 200 ] || fail "node $tag accepted $name while it caught up after the partition (poll $polls): $(cat "$WORK/who.body")"
    caught_up $TAGS && accepted_on other "$tag" && break
    [ "$(date +%s)" -lt "$end" ] || fail "node $tag did not catch up and serve within 120 s of healing"
  done
  c=$(whoami "$name" "$tag")
  [ "$c" != 200 ] || fail "node $tag accepted $name once caught up"
  log "node $tag refused $name in all $polls polls while it caught up, and serves again"
}
# all_of "CHECK && CHECK ...": whether the checks (functions here) all hold.
all_of() { eval "$1"; }
# caught_up TAGS...: same applied index and state hash on all, each serving.
caught_up() { same_state "$@"; }

# ---- the cluster ----
"$CLI" pki init-cluster --out "$WORK/pki" --nodes "A=$NET.1,B=$NET.2,C=$NET.3" >/dev/null
for t in $TAGS; do config "$t" "$TAGS"; done
for t in $TAGS; do start_ns "$t"; done
wait_until 60 "a ready cluster" ready $TAGS
LEADER=$(leader_of $TAGS)
log "leader: $LEADER"
MINT_ON=$LEADER mint other ValidUser
MINT_ON=$LEADER mint victim ValidUser
MINT_ON=$LEADER mint victim2 ValidUser
wait_until 60 "every certificate accepted on every node" all_of "accepted_everywhere other && accepted_everywhere victim && accepted_everywhere victim2"

# ---- (a) a follower cut off from the leader ----
CUT=""
for t in $TAGS; do [ "$t" = "$LEADER" ] || { CUT=$t; break; }; done
REST=""
for t in $TAGS; do [ "$t" = "$CUT" ] || REST="$REST $t"; done
log "(a) cutting follower $CUT off from leader $LEADER"
split_off "$CUT" "$LEADER"
revoke victim "$LEADER"
never_accepted victim "$CUT"
for t in $REST; do
  c=$(whoami victim "$t")
  [ "$c" != 200 ] || fail "node $t accepted victim after its revocation"
done
log "(a) restarting $CUT while it is still cut off"
kill9 "$CUT"
start_ns "$CUT"
never_accepted victim "$CUT"
through_heal victim "$CUT"
wait_until 60 "victim refused and other accepted everywhere" all_of "refused_everywhere victim && accepted_everywhere other"
log "(a) passed: $CUT never accepted victim; after healing, every node refuses it"

# ---- (b) the leader cut off into a minority ----
wait_until 60 "a ready cluster after healing" ready $TAGS
OLD=$(leader_of $TAGS)
MAJ=""
for t in $TAGS; do [ "$t" = "$OLD" ] || MAJ="$MAJ $t"; done
log "(b) cutting leader $OLD off from$MAJ"
# shellcheck disable=SC2086
split_off "$OLD" "$MAJ"
new_leader() { local l; l=$(leader_of $MAJ) && [ "$l" != "$OLD" ] && ready $MAJ; }
wait_until 60 "a new leader among$MAJ" new_leader
NEW=$(leader_of $MAJ)
log "new leader: $NEW"
revoke victim2 "$NEW"
never_accepted victim2 "$OLD"
for t in $MAJ; do
  c=$(whoami victim2 "$t")
  [ "$c" != 200 ] || fail "node $t accepted victim2 after its revocation"
done
through_heal victim2 "$OLD"
wait_until 60 "victim and victim2 refused and other accepted everywhere" all_of "refused_everywhere victim && refused_everywhere victim2 && accepted_everywhere other"
log "(b) passed: the old leader $OLD never accepted victim2"

# ---- the fast path: all nodes up, a DELETE is answered without waiting for leases ----
MINT_ON=$NEW mint victim3 ValidUser
wait_until 60 "victim3 accepted everywhere" all_of "accepted_everywhere victim3"
revoke victim3 "$(leader_of $TAGS)"
for t in $TAGS; do
  c=$(whoami victim3 "$t")
  [ "$c" != 200 ] || fail "node $t accepted victim3 after its revocation returned"
done
for t in $TAGS; do stop "$t"; done
log "PASS"
