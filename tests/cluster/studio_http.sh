#!/usr/bin/env bash
# Issue 15, the server's side of the Studio, with curl: /studio/ and its files are served by
# every node with a strict Content-Security-Policy (no inline script) and X-Frame-Options DENY,
# the page holds no inline script; every answer of the API carries the same headers and is not
# cached; a state-changing request a browser sent from another site's page (Origin of another
# site, "null", or Sec-Fetch-Site cross-site: a forged form post) is refused with 403 before
# it does anything, while the Studio's own origin, another node's and clients without Origin
# (curl, the CLI) go through; GET /admin/stats and /cluster/node-info with ?nodeTag= answer
# for the node named, and name a node that is down.
. "$(dirname "$0")/lib.sh"
start_cluster A B C
mint admin ClusterAdmin
mint user ValidUser '{"orders":"Read"}'

# head NAME METHOD NODE PATH [CURL ARGS...]: status into $CODE, headers into $WORK/last.head
head_of() {
  local who=$1 method=$2 node=$3 path=$4
  shift 4
  CODE=$(curl -s -o "$WORK/last.body" -D "$WORK/last.head" -w '%{http_code}' \
    --cacert "$WORK/pki/ca-chain.crt" ${who:+--cert "$CERTS/$who.pem"} -X "$method" "$@" \
    "$(url "$node" "$path")" || true)
}
header() { sed -n "s/^$1: //Ip" "$WORK/last.head" | tr -d '\r'; }
want() { [ "$CODE" = "$1" ] || fail "$2: HTTP $CODE (want $1): $(head -c 300 "$WORK/last.body")"; }
# secure WHAT: the last answer carries the security headers
secure() {
  [ "$(header X-Frame-Options)" = DENY ] || fail "$1: X-Frame-Options '$(header X-Frame-Options)'"
  [ "$(header X-Content-Type-Options)" = nosniff ] || fail "$1: no nosniff"
  local csp
  csp=$(header Content-Security-Policy)
  for d in "default-src 'none'" "script-src 'self'" "frame-ancestors 'none'" "form-action 'none'"; do
    case $csp in *"$d"*) ;; *) fail "$1: CSP '$csp' lacks $d" ;; esac
  done
  case $csp in *unsafe-inline* | *unsafe-eval* | *"*"*) fail "$1: CSP '$csp' is not strict" ;; esac
}

log "the Studio: /studio/ on every node, for anyone, with a strict policy and no inline script"
for t in A B C; do
  head_of "" GET "$t" /studio/
  want 200 "GET /studio/ on $t without a certificate"
  case $(header Content-Type) in text/html*) ;; *) fail "/studio/ is $(header Content-Type)" ;; esac
  secure "/studio/ on $t"
done
cp "$WORK/last.body" "$WORK/index.html"
grep -qi '<title>Corvid Studio</title>' "$WORK/index.html" || fail "the page has no title"
# every <script> names its file; no inline handler (onclick=...) nor javascript: URL
python3 - "$WORK/index.html" <<'EOF' || fail "the page holds inline script"
import re, sys
html = open(sys.argv[1]).read()
for m in re.finditer(r'<script\b([^>]*)>(.*?)</script>', html, re.S | re.I):
    if 'src=' not in m.group(1) or m.group(2).strip():
        sys.exit('inline <script>: ' + m.group(0)[:80])
if re.search(r'\son[a-z]+\s*=', html, re.I) or 'javascript:' in html.lower():
    sys.exit('inline handler')
if not re.search(r'<script\b[^>]*src=', html, re.I):
    sys.exit('no script at all')
EOF
files=$(grep -oE '(src|href)="/studio/[^"]+"' "$WORK/index.html" | sed 's/^[a-z]*="//; s/"$//' | sort -u)
[ -n "$files" ] || fail "the page names none of its files"
for f in $files; do
  head_of "" GET B "$f"
  want 200 "GET $f"
  secure "$f"
  case $f:$(header Content-Type) in
    *.js:text/javascript* | *.css:text/css* | *.svg:image/svg+xml* | *.png:image/png) ;;
    *) fail "$f is served as $(header Content-Type)" ;;
  esac
done
head_of "" GET A /studio/no-such-file.js
want 404 "a file the Studio does not have"
head_of "" POST A /studio/studio.js
want 405 "POST to a Studio file"
head_of "" GET C /
want 302 "GET /"
[ "$(header Location)" = /studio/ ] || fail "GET / goes to '$(header Location)'"

log "the API's answers: the same headers, never cached"
head_of admin GET A /admin/certificates
want 200 "GET /admin/certificates"
secure "GET /admin/certificates"
[ "$(header Cache-Control)" = no-store ] || fail "the list may be cached: '$(header Cache-Control)'"
head_of "" GET A /admin/certificates
want 403 "GET /admin/certificates without a certificate"
secure "a refusal"

log "CSRF: a state-changing request from another site's page is refused before it does anything"
body='{"Name":"csrf-victim","SecurityClearance":"ClusterAdmin","Permissions":{}}'
registered() { must 200 admin GET A "/admin/certificates?name=$1"; grep -q "\"Name\":\"$1\"" "$WORK/last.body"; }
for node in A B; do
  head_of admin POST "$node" /admin/certificates -H 'Content-Type: application/json' \
    -H 'Origin: https://evil.example' -d "$body"
  want 403 "a POST from https://evil.example to $node"
  grep -q '"Type":"CrossSiteRequest"' "$WORK/last.body" || fail "not a CSRF refusal: $(cat "$WORK/last.body")"
  grep -q 'https://evil.example' "$WORK/last.body" || fail "the refusal does not name the origin"
done
# what a forged HTML form sends: a form type, the page's origin
head_of admin POST A /admin/certificates -H 'Content-Type: text/plain' \
  -H 'Origin: https://evil.example' -H 'Sec-Fetch-Site: cross-site' -d "$body"
want 403 "a text/plain form post from another site"
head_of admin POST A /admin/certificates -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'Origin: null' --data-urlencode "Options=$body"
want 403 "a form post from an opaque origin (null)"
head_of admin POST A /admin/certificates -H 'Content-Type: application/json' \
  -H 'Sec-Fetch-Site: cross-site' -d "$body"
want 403 "a cross-site request without Origin"
head_of admin POST A /admin/certificates -H 'Content-Type: application/json' \
  -H "Origin: https://127.0.0.1:$(http_port A).evil.example" -d "$body"
want 403 "an origin that only starts like the node's"
if registered csrf-victim; then fail "a refused cross-site request registered a certificate"; fi
mint victim Operator
VICTIM=$(tp victim)
head_of admin DELETE C "/admin/certificates?thumbprint=$VICTIM" -H 'Origin: https://evil.example'
want 403 "a cross-site DELETE"
head_of admin POST A /admin/certificates/edit -H 'Content-Type: application/json' \
  -H 'Origin: https://evil.example' \
  -d "{\"Thumbprint\":\"$VICTIM\",\"Name\":\"victim\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"
want 403 "a cross-site edit"
head_of admin DELETE A /authentication/2fa -H 'Origin: https://evil.example'
want 403 "a cross-site logout (a route that needs no clearance)"
must 200 admin GET B "/admin/certificates?thumbprint=$VICTIM"
grep -q '"SecurityClearance":"Operator"' "$WORK/last.body" || fail "a refused edit changed the victim"

log "the Studio's own origin, another node's, and clients without Origin go through"
head_of admin POST A /admin/certificates -H 'Content-Type: application/json' \
  -H "Origin: https://127.0.0.1:$(http_port A)" -H 'Sec-Fetch-Site: same-origin' \
  -d '{"Name":"from-studio-a","SecurityClearance":"ValidUser","Permissions":{}}'
want 200 "a POST from A's own Studio"
head_of admin POST A /admin/certificates -H 'Content-Type: application/json' \
  -H "Origin: https://127.0.0.1:$(http_port B)" \
  -d '{"Name":"from-studio-b","SecurityClearance":"ValidUser","Permissions":{}}'
want 200 "a POST to A from B's Studio"
head_of admin DELETE C "/admin/certificates?thumbprint=$VICTIM"
want 204 "curl's DELETE (no Origin)"
registered from-studio-a || fail "from-studio-a was not registered"

log "?nodeTag=: each node's own statistics and state, through any node"
mint only-b ValidUser
ONLY_B=$(tp only-b)
must 200 only-b GET B /cluster/topology
must 200 admin GET A "/admin/stats?nodeTag=B"
grep -q "\"$ONLY_B\"" "$WORK/last.body" || fail "B's statistics through A lack only-b: $(cat "$WORK/last.body")"
must 200 admin GET A /admin/stats
if grep -q "\"$ONLY_B\"" "$WORK/last.body"; then fail "A's own statistics name a certificate used on B only"; fi
must 200 admin GET A "/admin/stats?nodeTag=A"
if grep -q "\"$ONLY_B\"" "$WORK/last.body"; then fail "?nodeTag=A did not answer for A"; fi
for t in A B C; do
  must 200 user GET B "/cluster/node-info?nodeTag=$t"
  grep -q "\"NodeTag\":\"$t\"" "$WORK/last.body" || fail "node-info?nodeTag=$t: $(cat "$WORK/last.body")"
done
must 404 admin GET A "/admin/stats?nodeTag=Z"
must 403 user GET A "/admin/stats?nodeTag=B"
head_of "" GET A "/cluster/node-info?nodeTag=B"
want 403 "node-info of another node without a certificate"
head_of "" GET A "/cluster/node-info"
want 200 "node-info of this node without a certificate"
kill9 C
must 502 admin GET A "/admin/stats?nodeTag=C"
grep -q '"Type":"NodeUnreachable"' "$WORK/last.body" && grep -q "Node C (https://127.0.0.1:$(http_port C))" "$WORK/last.body" ||
  fail "a node that is down: $(cat "$WORK/last.body")"
log "PASS"
