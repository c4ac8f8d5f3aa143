#!/usr/bin/env bash
# Issue 15: the Studio in a real browser. A 3-node cluster (tests/cluster/lib.sh), the client
# certificates a user would have (ClusterAdmin, Operator, ValidUser, one that needs two-factor
# authentication, one the cluster does not know), then tests/studio/studio.test.mjs drives
# Debian's Chromium through playwright-core: each certificate imported into Chromium's own NSS
# store with pk12util and chosen by Chromium itself (see tests/studio/browser.mjs).
#   STUDIO_SHOTS=DIR  also writes the screenshots of the main screens to DIR (docs/studio/)
. "$(dirname "$0")/../cluster/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
for t in chromium pk12util certutil node npm oathtool unzip; do
  command -v "$t" >/dev/null || fail "$t is missing: tools/run-tests installs it (tools/lib/deps.sh)"
done
. "$HERE/../../tools/lib/deps.sh"
corvid_npm_ci "$HERE" || fail "playwright-core (tests/studio/package-lock.json) is not installed"

# client certificate NAME: a self-signed client certificate (not a CA) in $WORK/own/NAME.*
own_cert() {
  mkdir -p "$WORK/own"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=clientAuth \
    -keyout "$WORK/own/$1.key" -out "$WORK/own/$1.crt" 2>/dev/null || fail "openssl req $1"
}
# Well-known certificates in the nodes' configuration: an admin by thumbprint, and a partner CA
# as an issuer.
own_cert wk-admin
mkdir -p "$WORK/own"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=Partner CA" \
  -keyout "$WORK/own/partner-ca.key" -out "$WORK/own/partner-ca.crt" 2>/dev/null || fail "partner CA"
openssl pkcs12 -export -in "$WORK/own/wk-admin.crt" -inkey "$WORK/own/wk-admin.key" \
  -out "$WORK/own/wk-admin.pfx" -passout pass: || fail "wk-admin.pfx"
WK_ADMIN=$(openssl x509 -in "$WORK/own/wk-admin.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
export STUDIO_WK_ADMIN=$WK_ADMIN
CLUSTER_EXTRA="\"Security.WellKnownCertificates.Admin\": [\"$WK_ADMIN\"], \"Security.WellKnownIssuers.Admin\": [\"own/partner-ca.crt\"]" \
  start_cluster A B C
# D: started passive, for the Studio to add to the cluster and remove again
config D "" '"Cluster.TrustedNodeCertificates.Path": "pki/ServerCertificatesCollection.pfx"'
start D
mint admin ClusterAdmin
mint oper Operator
mint user ValidUser '{"orders":"ReadWrite"}'
# one about to expire, and "user" seen by node C only: the Studio on A shows C's "last used"
must 200 admin POST A /admin/certificates \
  "{\"Name\":\"soon\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{},\"NotAfter\":\"$(date -u -d '+5 days' +%F)\"}"
must 200 user GET C /cluster/topology

# A certificate that needs two-factor authentication, and its key as an authenticator has it.
must 200 admin GET A '/admin/certificates/2fa/generate?name=alice'
python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['Secret'])" "$WORK/last.body" >"$WORK/alice.secret"
must 200 admin POST A /admin/certificates \
  "{\"Name\":\"alice\",\"SecurityClearance\":\"Operator\",\"Permissions\":{},\"TwoFactorAuthenticationKey\":\"$(cat "$WORK/alice.secret")\"}"
(mkdir -p "$CERTS/z-alice" && cd "$CERTS/z-alice" && unzip -q -o "$WORK/last.body") || fail "alice's zip"

own_cert stranger # unknown to the cluster
openssl pkcs12 -export -in "$WORK/own/stranger.crt" -inkey "$WORK/own/stranger.key" \
  -out "$WORK/own/stranger.pfx" -passout pass: || fail "stranger.pfx"
own_cert member-1 # a .pfx collection of two certificates, to upload as one entry
own_cert member-2
own_cert plain # a .crt to upload
own_cert keyed # a .pem of certificate and key to upload
# one that expired a week ago (made ten days back with faketime), registered as it is
faketime -f '-10d' openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
  -subj /CN=expired -addext basicConstraints=critical,CA:FALSE -keyout "$WORK/own/expired.key" \
  -out "$WORK/own/expired.crt" 2>/dev/null || fail "the expired certificate"
must 201 admin PUT A /admin/certificates "{\"Name\":\"expired\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{},\"Certificate\":\"$(base64 -w0 "$WORK/own/expired.crt")\"}"
openssl pkcs12 -export -in "$WORK/own/member-1.crt" -inkey "$WORK/own/member-1.key" \
  -certfile "$WORK/own/member-2.crt" -out "$WORK/own/collection.pfx" -passout pass:s3cret ||
  fail "collection.pfx"

# a server certificate for the whole cluster, for Replace server certificate
node_cert "A B C" cluster-cert '-1 hour' '+90 days' s3cret
export STUDIO_CLUSTER_PFX=$WORK/cluster-cert.pfx
STUDIO_CLUSTER_TP=$(openssl x509 -in "$WORK/cluster-cert.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
export STUDIO_CLUSTER_TP
export STUDIO_WORK=$WORK STUDIO_CA=$WORK/pki/ca-chain.crt STUDIO_ROOT=$WORK/pki/root.crt
export STUDIO_NODES="A=$(url A "") B=$(url B "") C=$(url C "")" STUDIO_D=$(url D "")
export STUDIO_PIDS="A=$(cat "$WORK/A.pid") B=$(cat "$WORK/B.pid") C=$(cat "$WORK/C.pid")"
export STUDIO_LEADER
STUDIO_LEADER=$(leader_of A B C)
log "the Studio in Chromium $(chromium --version 2>/dev/null | sed -n 's/^Chromium \([0-9.]*\).*/\1/p'), leader $STUDIO_LEADER"
(cd "$HERE" && node studio.test.mjs) || fail "the Studio's browser test"
log "PASS"
