#!/usr/bin/env bash
# Resource exhaustion through the public ports (issue 11, items 4 and 5), on three real nodes:
# unauthenticated bodies are refused at their headers without "100 Continue" and without
# growing the node; authenticated bodies share a bounded budget; a pipelined flood of GET
# /ca/crl whose answers are never read stays bounded, and the CRL is signed once per change;
# idle sockets that never send a ClientHello do not keep out a real client from the same
# address; 1,000 keep-alive connections from one address are all served; and
# connect-and-close attempts on the Raft port keep out neither a peer's handshake nor a
# restarted peer.
. "$(dirname "$0")/lib.sh"
start_cluster A B C
mkdir -p "$WORK/admin"
admin A generateClientCert admin "$WORK/admin" >/dev/null || fail "no admin certificate"
ADMIN="$WORK/admin/admin.pem"
CA="$WORK/pki/ca-chain.crt"
wait_until 60 "same state" same_state A B C

# Memory of node TAG: `kb TAG VmRSS` / `kb TAG VmHWM` in kB; hwm_reset sets the peak to now.
kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$(cat "$WORK/$1.pid")/status"; }
hwm_reset() { echo 5 >"/proc/$(cat "$WORK/$1.pid")/clear_refs"; }
# growth TAG BEFORE_KB: how far the peak rose above BEFORE_KB, in MB.
growth() { echo $((($(kb "$1" VmHWM) - $2) / 1024)); }

# The attack tools: raw sockets and TLS from Python's standard library.
cat >"$WORK/sec.py" <<'EOF'
import asyncio, os, select, socket, ssl, sys, threading, time

HOST = '127.0.0.1'

def tls_ctx(cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert)
    return ctx

def tls_connect(port, cert=None, timeout=120):
    s = socket.create_connection((HOST, port), timeout=timeout)
    return tls_ctx(cert).wrap_socket(s)

def read_head(t):
    """One response head (through the blank line), or what came before EOF."""
    buf = b''
    while b'\r\n\r\n' not in buf:
        try:
            d = t.recv(4096)
        except (OSError, ssl.SSLError):
            break
        if not d:
            break
        buf += d
    return buf.split(b'\r\n\r\n', 1)[0].decode('latin-1')

def status_of(head):
    parts = head.split(' ', 2)
    return parts[1] if len(parts) > 1 else 'none'

def bigbody(port, n, length):
    """n connections without a certificate announce a body of `length` bytes and, as an
    attacker would, send it whatever the answer. Prints per connection: the first answer's
    status, whether it closes the connection, and whether a 100 Continue ever came."""
    out = [None] * n
    barrier = threading.Barrier(n, timeout=120)
    def one(i):
        try:
            t = tls_connect(port)
            t.sendall(('PUT /admin/certificates HTTP/1.1\r\nHost: x\r\n'
                       'Content-Type: application/json\r\nContent-Length: %d\r\n'
                       'Expect: 100-continue\r\n\r\n' % length).encode())
            head = read_head(t)
            saw100 = status_of(head) == '100'
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            chunk = b'a' * 65536
            left = length
            try:
                while left > 0:
                    t.sendall(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
                while True:
                    h = read_head(t)
                    if not h:
                        break
                    saw100 = saw100 or status_of(h) == '100'
            except (OSError, ssl.SSLError):
                pass
            close = 'close' if 'connection: close' in head.lower() else 'keep'
            out[i] = '%s %s %s' % (status_of(head), close, '100' if saw100 else 'no100')
            t.close()
        except Exception as e:
            out[i] = 'error %r' % e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    for line in out:
        print(line)

def budget(port, n, length, cert):
    """n authenticated connections, one after the other, each announce a body of `length`
    bytes and wait for the go-ahead; all stay open. Prints each interim answer's status and
    whether a Retry-After came with it."""
    conns = []
    for i in range(n):
        t = tls_connect(port, cert)
        t.sendall(('PUT /admin/certificates HTTP/1.1\r\nHost: x\r\n'
                   'Content-Type: application/json\r\nContent-Length: %d\r\n'
                   'Expect: 100-continue\r\n\r\n' % length).encode())
        head = read_head(t)
        print(status_of(head), 'retry-after' if 'retry-after:' in head.lower() else '-')
        sys.stdout.flush()
        conns.append(t)
    for t in conns:
        t.close()

def queues(port, cport):
    """(bytes our side has not delivered yet, bytes the node has not read yet) of our
    connection, from /proc/net/tcp (established sockets only: loopback reuses the ports of
    connections in TIME_WAIT)."""
    tx = rx = None
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] != '01':
                continue
            q = fields[4].split(':')
            if fields[1].endswith(':%04X' % cport) and fields[2].endswith(':%04X' % port):
                tx = int(q[0], 16)
            if fields[1].endswith(':%04X' % port) and fields[2].endswith(':%04X' % cport):
                rx = int(q[1], 16)
    return tx, rx

def get(port, path, cert=None):
    t = tls_connect(port, cert, timeout=300)
    t.sendall(('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % path).encode())
    head = read_head(t)
    t.close()
    return status_of(head)

class Responses:
    """Reads HTTP/1.1 responses (Content-Length framed) off a socket."""
    def __init__(self, t):
        self.t, self.buf = t, b''
    def next(self):
        while b'\r\n\r\n' not in self.buf:
            d = self.t.recv(65536)
            if not d:
                return None
            self.buf += d
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        length = 0
        for line in head.split(b'\r\n')[1:]:
            k, _, v = line.partition(b':')
            if k.strip().lower() == b'content-length':
                length = int(v)
        while len(self.buf) < length:
            d = self.t.recv(65536)
            if not d:
                return None
            self.buf += d
        self.buf = self.buf[length:]
        return head.split(b' ', 2)[1].decode()

def crlflood(port, count, settled, go):
    """One connection without a certificate pipelines `count` GET /ca/crl and reads nothing
    until the node has either read all of them (everything sent was delivered and read) or
    stopped reading this connection (what it has not read stays unchanged while another
    client is served). Then writes that state to
    `settled`, waits for the file `go`, reads every answer and prints how many were 200."""
    t = tls_connect(port)
    t.settimeout(None)
    cport = t.getsockname()[1]
    done = threading.Event()
    def sender():
        try:
            t.sendall(b'GET /ca/crl HTTP/1.1\r\nHost: x\r\n\r\n' * count)
        except (OSError, ssl.SSLError):
            pass
        done.set()
    threading.Thread(target=sender, daemon=True).start()
    state = 'unsettled'
    for _ in range(3000):
        before = queues(port, cport)
        try:
            probe = get(port, '/cluster/node-info')
        except (OSError, ssl.SSLError):
            probe = 'error'
        if probe != '200':
            state = 'probe-%s' % probe
            break
        after = queues(port, cport)
        if done.is_set() and before == after == (0, 0):
            state = 'read-everything'
            break
        if before[1] and after[1] == before[1]:
            state = 'stopped-reading'
            break
        time.sleep(0.1)
    with open(settled, 'w') as f:
        f.write(state + '\n')
    for _ in range(6000):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    t.settimeout(300)
    r, ok = Responses(t), 0
    try:
        for _ in range(count):
            st = r.next()
            if st is None:
                break
            ok += st == '200'
    except (OSError, ssl.SSLError):
        pass
    print(ok)

def idle(port, n, ready, stop):
    """Holds n TCP connections that never send a byte; each one the node closes is opened
    again, until the file `stop` appears. Prints how many were opened again."""
    def opened():
        s = socket.create_connection((HOST, port), timeout=60)
        s.setblocking(False)
        return s
    socks = [opened() for _ in range(n)]
    with open(ready, 'w') as f:
        f.write('ready\n')
    again = 0
    for _ in range(3000):
        if os.path.exists(stop):
            break
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            try:
                gone = s.recv(1) == b''
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone:
                s.close()
                socks[socks.index(s)] = opened()
                again += 1
    for s in socks:
        s.close()
    print(again)

def raftmix(port, n, cert):
    """n times: a TCP connection opened and closed at once (a port scanner), then a TLS
    handshake with a node certificate, as a peer makes. Prints how many handshakes completed."""
    ok = 0
    for _ in range(n):
        socket.create_connection((HOST, port), timeout=60).close()
        try:
            t = tls_connect(port, cert, timeout=60)
            ok += 1
            t.close()
        except (OSError, ssl.SSLError):
            pass
    print(ok)

def keepalive(port, n, cert):
    """Opens n TLS connections (a load balancer's pool: all connect at once, at most 128
    handshake at a time, below the node's 256 pending handshakes, so that none of them has
    to give way however slow this machine is), keeps all of them open, and sends two requests
    on each, one round after the other. Prints how many connections opened and how many
    answers were 200 in each round. A 503 NotReady (the node's read lease lapsed for a moment
    on a loaded machine: nothing was done) is asked again on the same connection, as lib.sh's
    `must` and RavenDB's clients do."""
    req = b'GET /certificates/whoami HTTP/1.1\r\nHost: x\r\n\r\n'
    async def ask(rw):
        r, w = rw
        for _ in range(300):
            w.write(req)
            head = await r.readuntil(b'\r\n\r\n')
            length = 0
            for line in head.split(b'\r\n')[1:]:
                k, _, v = line.partition(b':')
                if k.strip().lower() == b'content-length':
                    length = int(v)
            body = await r.readexactly(length)
            status = head.split(b' ', 2)[1]
            if status != b'503' or b'"NotReady"' not in body:
                return status == b'200'
            await asyncio.sleep(0.1)
        return False
    async def main():
        ctx = tls_ctx(cert)
        slots = asyncio.Semaphore(128)
        async def connect():
            async with slots:
                return await asyncio.open_connection(HOST, port, ssl=ctx,
                                                     ssl_handshake_timeout=240)
        conns = await asyncio.gather(*[connect() for _ in range(n)], return_exceptions=True)
        live = [c for c in conns if not isinstance(c, BaseException)]
        rounds = []
        for _ in range(2):
            res = await asyncio.gather(*[ask(c) for c in live], return_exceptions=True)
            rounds.append(sum(1 for x in res if x is True))
        for _, w in live:
            w.close()
        errors = sorted({repr(c)[:80] for c in conns if isinstance(c, BaseException)})
        print(len(live), rounds[0], rounds[1], *errors[:3])
    asyncio.run(asyncio.wait_for(main(), 300))

if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'bigbody':
        bigbody(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == 'budget':
        budget(int(args[0]), int(args[1]), int(args[2]), args[3])
    elif cmd == 'crlflood':
        crlflood(int(args[0]), int(args[1]), args[2], args[3])
    elif cmd == 'idle':
        idle(int(args[0]), int(args[1]), args[2], args[3])
    elif cmd == 'raftmix':
        raftmix(int(args[0]), int(args[1]), args[2])
    elif cmd == 'keepalive':
        keepalive(int(args[0]), int(args[1]), args[2])
EOF
sec() { timeout 600 python3 "$WORK/sec.py" "$@"; }

log "the CRL is signed once per change, in DER and PEM"
crl() { curl -s -f --cacert "$CA" "$(url A "/ca/crl$1")" -o "$2" || fail "GET /ca/crl$1 failed"; }
crl "" "$WORK/crl1.der"
crl "" "$WORK/crl2.der"
cmp -s "$WORK/crl1.der" "$WORK/crl2.der" || fail "two GET /ca/crl without a change between them signed two CRLs"
crl "?format=pem" "$WORK/crl.pem"
openssl crl -in "$WORK/crl.pem" -outform DER | cmp -s - "$WORK/crl1.der" ||
  fail "the PEM CRL is not the DER one"
# 200 revoked certificates: a CRL of the size a cluster in use serves (about 8 KB)
mkdir -p "$WORK/out"
for i in $(seq 1 200); do echo "generateClientCert victim-$i $WORK/out"; done |
  "$CLI" admin-channel --data-dir "$WORK/data/A" >"$WORK/victims.out" 2>&1 || fail "generating victims failed"
for i in $(seq 1 200); do
  echo "url = \"$(url A "/admin/certificates?thumbprint=$(openssl x509 -in "$WORK/out/victim-$i.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')")\""
  echo 'request = "DELETE"'
  echo 'write-out = "%{http_code}\n"'
  echo 'output = "/dev/null"'
done >"$WORK/revoke.curl"
curl -s --cacert "$CA" --cert "$ADMIN" -K "$WORK/revoke.curl" >"$WORK/revoke.out" || true
[ "$(grep -c '^204$' "$WORK/revoke.out")" = 200 ] || fail "revoking 200 victims: $(sort "$WORK/revoke.out" | uniq -c)"
wait_until 60 "same state" same_state A B C
crl "" "$WORK/crl3.der"
SERIAL=$(openssl x509 -in "$WORK/out/victim-200.pem" -noout -serial | sed 's/serial=//')
openssl crl -inform DER -in "$WORK/crl3.der" -noout -text | grep -q "Serial Number: $SERIAL" ||
  fail "the CRL signed after the revocations does not list serial $SERIAL"
crl "?format=pem" "$WORK/crl3.pem"
openssl crl -in "$WORK/crl3.pem" -outform DER | cmp -s - "$WORK/crl3.der" ||
  fail "the PEM CRL after the revocations is not the DER one"
log "the CRL lists $(openssl crl -inform DER -in "$WORK/crl3.der" -noout -text | grep -c 'Serial Number:') serials in $(stat -c %s "$WORK/crl3.der") bytes"

log "60 connections without a certificate announcing 4 MiB bodies"
BEFORE=$(kb A VmRSS)
hwm_reset A
sec bigbody "$(http_port A)" 60 $((4 * 1024 * 1024)) >"$WORK/bigbody.out"
GROW=$(growth A "$BEFORE")
log "node A: RSS $((BEFORE / 1024)) MB before, peak +$GROW MB; answers: $(sort "$WORK/bigbody.out" | uniq -c | tr '\n' ' ')"
[ "$(grep -c '^403 close no100$' "$WORK/bigbody.out")" = 60 ] ||
  fail "not every connection was refused with 403 and closed, without 100 Continue: $(sort "$WORK/bigbody.out" | uniq -c)"
[ "$GROW" -le 48 ] || fail "60 refused bodies grew node A's peak RSS by $GROW MB"

log "authenticated bodies beyond the budget are refused before they are read"
sec budget "$(http_port B)" 20 $((4 * 1024 * 1024)) "$ADMIN" >"$WORK/budget.out"
log "node B: $(sort "$WORK/budget.out" | uniq -c | tr '\n' ' ')"
grep -q '^503 retry-after$' "$WORK/budget.out" ||
  fail "20 bodies of 4 MiB held at once were all let in: $(sort "$WORK/budget.out" | uniq -c)"
[ "$(grep -c '^100 ' "$WORK/budget.out")" -le 16 ] ||
  fail "more than 64 MiB of bodies were let in: $(sort "$WORK/budget.out" | uniq -c)"
[ "$(grep -vc '^100 -$\|^503 retry-after$' "$WORK/budget.out")" = 0 ] ||
  fail "unexpected interim answers: $(cat "$WORK/budget.out")"

log "40,000 pipelined GET /ca/crl whose answers are not read"
BEFORE=$(kb C VmRSS)
hwm_reset C
sec crlflood "$(http_port C)" 40000 "$WORK/flood.settled" "$WORK/flood.go" >"$WORK/flood.out" &
FLOOD=$!
wait_until 120 "the node to read the flood or stop reading it" test -s "$WORK/flood.settled"
GROW=$(growth C "$BEFORE")
touch "$WORK/flood.go"
wait "$FLOOD" || fail "the flood client failed"
log "node C: RSS $((BEFORE / 1024)) MB before, peak +$GROW MB while unread; $(cat "$WORK/flood.settled"); $(cat "$WORK/flood.out") answers 200 once read"
[ "$(cat "$WORK/flood.settled")" = stopped-reading ] ||
  fail "node C did not stop reading a connection whose answers were not read: $(cat "$WORK/flood.settled")"
[ "$GROW" -le 48 ] || fail "the unread flood grew node C's peak RSS by $GROW MB"
[ "$(cat "$WORK/flood.out")" = 40000 ] || fail "once read, $(cat "$WORK/flood.out") of 40000 answers were 200"

log "300 idle sockets that never send a ClientHello, and a real client from the same address"
sec idle "$(http_port A)" 300 "$WORK/idle.ready" "$WORK/idle.stop" >"$WORK/idle.out" &
IDLE=$!
wait_until 60 "300 idle sockets" test -s "$WORK/idle.ready"
for i in 1 2 3 4 5; do
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 --cacert "$CA" --cert "$ADMIN" \
    "$(url A /certificates/whoami)" || true)
  [ "$got" = 200 ] || { touch "$WORK/idle.stop"; fail "with idle sockets open, request $i got '$got'"; }
done
touch "$WORK/idle.stop"
wait "$IDLE" || fail "the idle-socket client failed"
log "the node closed idle sockets $(cat "$WORK/idle.out") times while the real client was served"

log "1,000 keep-alive connections from one address"
BEFORE=$(kb B VmRSS)
hwm_reset B
sec keepalive "$(http_port B)" 1000 "$ADMIN" >"$WORK/ka.out"
log "node B: RSS $((BEFORE / 1024)) MB before, peak +$(growth B "$BEFORE") MB; opened, 200s per round: $(cat "$WORK/ka.out")"
[ "$(cut -d' ' -f1-3 "$WORK/ka.out")" = "1000 1000 1000" ] ||
  fail "not all of 1,000 keep-alive connections were served twice: $(cat "$WORK/ka.out")"

log "100 connect-and-close attempts on the Raft ports, each followed by a peer's handshake"
for t in A B C; do
  sec raftmix "$(raft_port "$t")" 100 "$WORK/pki/$t.pem" >"$WORK/raftmix-$t.out"
  log "node $t: $(cat "$WORK/raftmix-$t.out") handshakes completed"
  [ "$(cat "$WORK/raftmix-$t.out")" = 100 ] ||
    fail "node $t's Raft port refused a peer after connect-and-close attempts: $(cat "$WORK/raftmix-$t.out") of 100 handshakes"
done
L=$(leader_of A B C) || fail "no leader after the attempts"
F=A
[ "$L" = A ] && F=B
stop "$F"
start "$F"
wait_until 60 "restarted node $F rejoins" ready A B C
gen "$F" after-restart || fail "no commit through restarted node $F"
wait_until 60 "same state" same_state A B C

for t in A B C; do stop "$t"; done
log "PASS"
