#!/usr/bin/env bash
# Checks what of the corvid CLI's two-factor side needs no cluster: the help texts, a code given
# on the command line refused (and never repeated), the usage errors, and that login reaches a
# node before it asks for a code. What the nodes answer is tests/cluster's part.
# usage: cli_two_factor.sh PATH-TO-CORVID
set -euo pipefail

corvid=${1:?usage: $0 PATH-TO-CORVID}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
unset CORVID_URL CORVID_CERT CORVID_CA_FILE CORVID_CERT_PASSWORD

# runs corvid with stdin from $in (default /dev/null); sets rc, out, err
in=/dev/null
run() {
  set +e
  "$corvid" "$@" <"$in" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}
expect() { # expect RC WHAT: the last run's exit status
  [ "$rc" -eq "$1" ] || fail "$2: exit $rc, want $1 (stderr: $err)"
}

# ---- help texts
run --help
expect 0 "corvid --help"
grep -q '^  login  ' <<<"$out" || fail "corvid --help does not list login"
grep -q '^  logout  ' <<<"$out" || fail "corvid --help does not list logout"
run login --help
expect 0 "login --help"
for want in 'usage: corvid login \[--duration MIN\]' 'never taken' 'stdin' 'oathtool --totp' \
  'Examples:' 'Global options'; do
  grep -q -- "$want" <<<"$out" || fail "login --help lacks '$want'"
done
run logout --help
expect 0 "logout --help"
grep -q 'DELETE' <<<"$out" || fail "logout --help does not name its request"
for cmd in generate clone upload edit; do
  run certs "$cmd" --help
  expect 0 "certs $cmd --help"
  grep -q -- '--two-factor ' <<<"$out" || fail "certs $cmd --help lacks --two-factor"
  grep -q 'shown once' <<<"$out" || fail "certs $cmd --help does not say the key is shown once"
done
run certs edit --help
grep -q -- '--no-two-factor' <<<"$out" || fail "certs edit --help lacks --no-two-factor"
ok "help texts"

# ---- a code on the command line is refused before anything else, and never repeated
for args in "login 123456" "login --code=123456" "login --code 123456" "login --token=123456" \
  "login --totp=123456" "--url https://127.0.0.1:1 login 123456"; do
  # shellcheck disable=SC2086
  run $args
  expect 2 "corvid $args"
  grep -q 'takes no code on the command line' <<<"$err" || fail "corvid $args: $err"
  grep -q 123456 <<<"$out$err" && fail "corvid $args repeats the code"
done
run logout 123456
expect 2 "logout 123456"
grep -q 'logout takes no arguments' <<<"$err" || fail "logout 123456: $err"
run logout --code=123456
expect 2 "logout --code"
grep -q 123456 <<<"$out$err" && fail "logout --code repeats the code"
ok "a code as an argument is refused"

run logout --duration 5
expect 2 "logout --duration"
run login --duration
expect 2 "login --duration without a value"
run certs edit alice --two-factor --no-two-factor
expect 2 "edit --two-factor --no-two-factor"
grep -q 'not both' <<<"$err" || fail "edit --two-factor --no-two-factor: $err"
run login
expect 2 "login without a node"
grep -q 'no node to talk to' <<<"$err" || fail "login without a node: $err"
run login --url https://127.0.0.1:1
expect 2 "login without a certificate"
grep -q 'give --cert FILE or set CORVID_CERT' <<<"$err" || fail "login without --cert: $err"
ok "usage errors"

# ---- login reaches a node before it reads a code: nothing is taken from stdin when none answers
"$corvid" pki init-cluster --out "$tmp/pki" --nodes A=127.0.0.1 >/dev/null
printf '123456\nleft for the script\n' >"$tmp/in"
exec 3<"$tmp/in"
set +e
"$corvid" login --url https://127.0.0.1:1 --cert "$tmp/pki/A.pfx" <&3 >/dev/null 2>"$tmp/err"
rc=$?
set -e
err=$(cat "$tmp/err")
expect 3 "login to a node that does not answer"
grep -q 'cannot connect' <<<"$err" || fail "login to a closed port: $err"
[ "$(head -n 1 <&3)" = 123456 ] || fail "login read stdin although no node answered"
exec 3<&-
ok "no code read before a node answers"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all passed"
