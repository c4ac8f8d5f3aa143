#!/usr/bin/env bash
# Issue 14: two-factor authentication on a live cluster, with curl, oathtool and zbarimg as a
# user has them. The key's QR code (the API's SVG, rendered to PNG) decodes to its otpauth://
# URI; a certificate registered with the key gets 428 on every node until it posts a code;
# then one login holds on all three nodes, with the cookie when it has limits; logout ends it
# everywhere; a code is taken once on any node; five wrong codes lock the certificate with
# 429 and Retry-After; a restart keeps the session; a new key or none ends it; every refusal
# of RavenDB's section 7 has its status and message; the node's own certificate bypasses 2FA.
. "$(dirname "$0")/lib.sh"
start_cluster A B C
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"
mint admin ClusterAdmin

# call2 NAME METHOD NODE PATH [BODY [CURL ARGS...]]: call, with the response headers in
# $WORK/last.head and extra curl arguments (cookies).
call2() {
  local who=$1 method=$2 node=$3 path=$4 body=${5:-}
  shift $(($# < 5 ? $# : 5))
  CODE=$(curl -s -o "$WORK/last.body" -D "$WORK/last.head" -w '%{http_code}' \
    --cacert "$WORK/pki/ca-chain.crt" --cert "$CERTS/$who.pem" -X "$method" \
    ${body:+-H 'Content-Type: application/json' -d "$body"} "$@" "$(url "$node" "$path")" || true)
}
# expect STATUS TEXT: the last answer had STATUS and TEXT in its body.
expect() {
  [ "$CODE" = "$1" ] && grep -qF -- "$2" "$WORK/last.body" ||
    fail "want $1 with '$2', got $CODE: $(head -c 400 "$WORK/last.body")"
}
json() { python3 -c "import json,sys; print(json.load(open('$WORK/last.body'))$1)"; }
# code SECRET [SECONDS]: the TOTP code now (or SECONDS later), as an authenticator app shows it
code() { oathtool --totp -b ${2:+--now "@$(($(date +%s) + $2))"} "$1"; }
not() { ! "$@"; }
# answers STATUS NAME METHOD NODE PATH [BODY [CURL ARGS...]]: call2 was answered STATUS
answers() {
  local want=$1
  shift
  call2 "$@"
  [ "$CODE" = "$want" ]
}
# on_all STATUS NAME PATH [CURL ARGS...]: every node answers STATUS (once it applied the change)
on_all() {
  local want=$1 who=$2 path=$3 t
  shift 3
  for t in A B C; do
    wait_until 20 "$t answers $want to $who" answers "$want" "$who" GET "$t" "$path" "" "$@"
  done
}

log "the configuration, and a key with its QR code"
call2 admin GET B /authentication/2fa/configuration
expect 200 '"DefaultTwoFactorSessionDurationInMin":120'
expect 200 '"MaxTwoFactorSessionDurationInMin":1440'
call2 admin GET A '/admin/certificates/2fa/generate?name=alice'
expect 200 '"Secret"'
SECRET=$(json "['Secret']")
URI=$(json "['QrCodeUri']")
[ "${#SECRET}" = 32 ] || fail "secret of ${#SECRET} characters"
[ "$URI" = "otpauth://totp/Corvid:alice?secret=$SECRET&issuer=Corvid" ] || fail "URI $URI"
json "['QrCodeSvg']" >"$WORK/qr.svg"
rsvg-convert --width 400 --background-color white -o "$WORK/qr.png" "$WORK/qr.svg"
[ "$(zbarimg --quiet --raw "$WORK/qr.png")" = "$URI" ] || fail "the QR code does not decode to $URI"
call2 admin GET A '/admin/certificates/2fa/generate?name=bob&format=svg'
[ "$CODE" = 200 ] && grep -qi '^content-type: image/svg+xml' "$WORK/last.head" || fail "svg: $CODE"
rsvg-convert --width 400 --background-color white -o "$WORK/qr2.png" "$WORK/last.body"
zbarimg --quiet --raw "$WORK/qr2.png" | grep -q '^otpauth://totp/Corvid:bob?secret=[A-Z2-7]\{32\}&issuer=Corvid$' ||
  fail "the SVG answer does not decode"
for bad in '"nope"' '"GEZDGNBV"' '"GEZDGNBVGY3TQOJQGEZD!NBVGY3TQOJQ"'; do
  call2 admin POST A /admin/certificates "{\"Name\":\"x\",\"TwoFactorAuthenticationKey\":$bad}"
  expect 400 "two-factor key"
done

log "a certificate with the key: 428 on every node until it logs in"
curl_key() { echo "\"TwoFactorAuthenticationKey\":\"$1\""; }
must 200 admin POST A /admin/certificates "{\"Name\":\"alice\",\"SecurityClearance\":\"Operator\",\"Permissions\":{},$(curl_key "$SECRET")}"
(cd "$CERTS" && rm -rf z-alice && mkdir z-alice && cd z-alice && unzip -q "$WORK/last.body" &&
  cat alice.crt alice.key >"$CERTS/alice.pem") || fail "alice's zip"
on_all 428 alice /admin/certificates
expect 428 "requires two factor authorization to be valid. Please POST the relevant TOTP value to /authentication/2fa"
call2 alice GET C /certificates/whoami
expect 200 '"HasTwoFactor":true'
expect 200 '"TwoFactorExpirationDate":null'
call2 admin GET B "/admin/certificates?thumbprint=$(tp alice)"
expect 200 '"HasTwoFactor":true'
grep -q "$SECRET" "$WORK/last.body" && fail "the key is returned by GET"
call2 alice GET A /authentication/2fa/configuration
expect 200 '"MaxTwoFactorSessionDurationInMin"'

log "refusals: duration, token, certificates without a key"
call2 alice POST A '/authentication/2fa?sessionDurationInMin=1441' '{"Token":"123456"}'
expect 400 'longer than the maximum of 1440 minutes'
call2 alice POST A '/authentication/2fa?sessionDurationInMin=zero' '{"Token":"123456"}'
expect 400 'sessionDurationInMin must be a number'
call2 alice POST A /authentication/2fa '{"Token":"12ab56"}'
expect 400 'Token must be the 6-digit code'
call2 alice POST A /authentication/2fa '{}'
expect 400 '"Error":"Token must be'
call2 admin POST A /authentication/2fa '{"Token":"123456"}'
expect 400 'does not use two-factor authentication'
call2 node POST A /authentication/2fa '{"Token":"123456"}'
expect 400 'is not registered'
CODE=$(curl -s -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" \
  -X POST -d '{"Token":"123456"}' "$(url A /authentication/2fa)" || true)
expect 400 'needs a client certificate'

log "a login without limits holds on every node; the same code is refused on another node"
C1=$(code "$SECRET")
WRONG=$(printf '%06d' $(((10#$C1 + 1) % 1000000)))
call2 alice POST B /authentication/2fa "{\"Token\":\"$WRONG\"}"
expect 406 'Wrong token provided for'
call2 alice POST A '/authentication/2fa?hasLimits=false&sessionDurationInMin=30' "{\"Token\":\"$C1\"}"
[ "$CODE" = 202 ] || fail "login: $CODE $(cat "$WORK/last.body")"
grep -qi '^set-cookie' "$WORK/last.head" && fail "a cookie without limits"
on_all 200 alice /admin/certificates
call2 alice GET B /certificates/whoami
json "['TwoFactorExpirationDate']" | grep -q '^20[0-9][0-9]-' || fail "no expiry in whoami"
call2 alice POST C '/authentication/2fa?hasLimits=false' "{\"Token\":\"$C1\"}"
expect 406 'This code was used already'

log "a restart keeps the session"
stop A
start A
wait_until 60 "A serving" ready A B C
on_all 200 alice /admin/certificates

log "logout ends it on every node before it is answered"
call2 alice DELETE C /authentication/2fa
[ "$CODE" = 204 ] || fail "logout: $CODE $(cat "$WORK/last.body")"
for t in A B C; do must 428 alice GET "$t" /admin/certificates; done

log "on one connection: refused, a login, then let in"
CODES=$(curl -s -o /dev/null -w '%{http_code} %{num_connects}\n' --cacert "$WORK/pki/ca-chain.crt" \
  --cert "$CERTS/alice.pem" "$(url B /admin/certificates)" \
  --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' --cacert "$WORK/pki/ca-chain.crt" \
  --cert "$CERTS/alice.pem" -X POST -H 'Content-Type: application/json' \
  -d "{\"Token\":\"$(code "$SECRET" 30)\"}" "$(url B '/authentication/2fa?hasLimits=false')" \
  --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' --cacert "$WORK/pki/ca-chain.crt" \
  --cert "$CERTS/alice.pem" "$(url B /admin/certificates)" | tr '\n' ' ')
[ "$CODES" = "428 1 202 0 200 0 " ] || fail "one connection: $CODES"
call2 alice DELETE A /authentication/2fa
[ "$CODE" = 204 ] || fail "logout: $CODE"
for t in A B C; do must 428 alice GET "$t" /admin/certificates; done

log "with limits: the cookie, and nothing without it"
call2 alice POST B /authentication/2fa "{\"Token\":\"$(code "$SECRET" 60)\"}"
[ "$CODE" = 202 ] || fail "login with limits: $CODE $(cat "$WORK/last.body")"
COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: 2fa-cookie=\([0-9a-f]*\);.*/\1/p' "$WORK/last.head" | tr -d '\r')
[ "${#COOKIE}" = 64 ] || fail "cookie: $(cat "$WORK/last.head")"
for attr in 'HttpOnly' 'Secure' 'SameSite=Strict' 'Max-Age=7200'; do
  grep -i '^set-cookie' "$WORK/last.head" | grep -q "$attr" || fail "cookie without $attr"
done
on_all 200 alice /admin/certificates -H "Cookie: 2fa-cookie=$COOKIE"
call2 alice GET C /admin/certificates
expect 428 "Missing the '2fa-cookie' in the request"
call2 alice GET A /admin/certificates "" -H "Cookie: other=1; 2fa-cookie=${COOKIE%?}0"
[ "${COOKIE: -1}" = 0 ] || expect 428 'Expected cookie value does not match provided value'
call2 alice GET A /certificates/whoami
expect 200 '"HasTwoFactor":true'

log "a new key ends the session; removing the key makes it a plain certificate"
call2 admin GET A '/admin/certificates/2fa/generate?name=alice'
SECRET2=$(json "['Secret']")
must 201 admin POST A /admin/certificates/edit "{\"Thumbprint\":\"$(tp alice)\",\"Name\":\"alice\",\"SecurityClearance\":\"Operator\",\"Permissions\":{},$(curl_key "$SECRET2")}"
on_all 428 alice /admin/certificates -H "Cookie: 2fa-cookie=$COOKIE"
call2 alice POST A /authentication/2fa "{\"Token\":\"$(code "$SECRET" 60)\"}"
expect 406 'Wrong token provided for'
must 201 admin POST A '/admin/certificates/edit?deleteTwoFactorConfiguration=true' "{\"Thumbprint\":\"$(tp alice)\",\"Name\":\"alice\",\"SecurityClearance\":\"Operator\",\"Permissions\":{}}"
on_all 200 alice /admin/certificates
call2 alice GET A /certificates/whoami
expect 200 '"HasTwoFactor":false'

log "five wrong codes a minute, then 429 on every node, even for the right code"
must 200 admin POST A /admin/certificates "{\"Name\":\"bob\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{},$(curl_key "$SECRET2")}"
(cd "$CERTS" && rm -rf z-bob && mkdir z-bob && cd z-bob && unzip -q "$WORK/last.body" &&
  cat bob.crt bob.key >"$CERTS/bob.pem") || fail "bob's zip"
C2=$(code "$SECRET2")
WRONG=$(printf '%06d' $(((10#$C2 + 500000) % 1000000)))
for t in A B C A B; do
  call2 bob POST "$t" /authentication/2fa "{\"Token\":\"$WRONG\"}"
  expect 406 'Wrong token provided for'
done
for t in C A B; do
  wait_until 20 "$t locks bob" answers 429 bob POST "$t" /authentication/2fa "{\"Token\":\"$C2\"}"
  expect 429 'Too many wrong codes for the certificate'
  grep -qi '^retry-after: [1-6]\?[0-9]' "$WORK/last.head" || fail "no Retry-After: $(cat "$WORK/last.head")"
done

log "revoking a certificate ends its session"
call2 admin GET A '/admin/certificates/2fa/generate?name=carol'
SECRET3=$(json "['Secret']")
must 200 admin POST A /admin/certificates "{\"Name\":\"carol\",\"SecurityClearance\":\"Operator\",\"Permissions\":{},$(curl_key "$SECRET3")}"
(cd "$CERTS" && rm -rf z-carol && mkdir z-carol && cd z-carol && unzip -q "$WORK/last.body" &&
  cat carol.crt carol.key >"$CERTS/carol.pem") || fail "carol's zip"
call2 carol POST C '/authentication/2fa?hasLimits=false' "{\"Token\":\"$(code "$SECRET3")\"}"
[ "$CODE" = 202 ] || fail "carol's login: $CODE $(cat "$WORK/last.body")"
on_all 200 carol /admin/certificates
must 204 admin DELETE A "/admin/certificates?thumbprint=$(tp carol)"
for t in A B C; do
  call2 carol GET "$t" /admin/certificates
  expect 403 'was revoked on'
done
log "the corvid CLI: --two-factor, login, logout"
export CORVID_URL="$(url A ""),$(url B ""),$(url C "")" CORVID_CA_FILE="$WORK/pki/ca-chain.crt"
openssl pkcs12 -export -passout pass: -in "$CERTS/admin.pem" -out "$WORK/admin.pfx"
export CORVID_CERT="$WORK/admin.pfx"
unset CORVID_CERT_PASSWORD
O="$WORK/o"
mkdir -p "$O"
# cli RC ARGS...: corvid ARGS with stdin from $O/in, its exit status RC; stdout and stderr in $O
cli() {
  local want=$1 rc=0
  shift
  "$CLI" "$@" <"$O/in" >"$O/out" 2>"$O/err" || rc=$?
  [ "$rc" = "$want" ] || fail "corvid $* -> $rc, want $want: $(head -c 600 "$O/err") $(head -c 300 "$O/out")"
}
has() { grep -qF -- "$2" "$O/$1" || fail "$1 lacks '$2': $(head -c 800 "$O/$1")"; }
: >"$O/in"
cli 0 certs generate dave --clearance Operator --two-factor --out "$WORK/dave" --json
KEY=$(python3 -c "import json; print(json.load(open('$O/out'))['TwoFactorAuthenticationKey'])")
python3 -c "import json,sys; d=json.load(open('$O/out')); sys.exit(0 if d['QrCodeUri'].startswith('otpauth://totp/') and 'secret=$KEY' in d['QrCodeUri'] else 1)" ||
  fail "no otpauth URI with the key: $(cat "$O/out")"
has err "shown this once"
DAVE="$WORK/dave/dave.pfx"
cli 0 certs generate erin --clearance ValidUser --two-factor --out "$WORK/erin"
has out "Key:         "
has out "otpauth://totp/"
cli 1 certs list --cert "$DAVE"
has err "428"
has err "corvid login"
echo 12345 >"$O/in"
cli 2 login --cert "$DAVE"
has err "6 digits"
: >"$O/in"
cli 2 login --cert "$DAVE" 123456
has err "takes no code on the command line"
oathtool --totp -b "$KEY" >"$O/in"
cli 0 login --cert "$DAVE" --duration 30
has out "Logged in until"
: >"$O/in"
for u in "$(url A "")" "$(url B "")" "$(url C "")"; do
  wait_until 20 "$u lets dave in" "$CLI" certs list --cert "$DAVE" --url "$u"
done
cli 0 certs whoami --cert "$DAVE"
has out "session until"
cli 0 logout --cert "$DAVE"
has out "Logged out"
for u in "$(url A "")" "$(url B "")" "$(url C "")"; do
  wait_until 20 "$u refuses dave" not "$CLI" certs list --cert "$DAVE" --url "$u"
done
cli 0 certs edit dave --no-two-factor
cli 0 certs list --cert "$DAVE"
log "PASS"
