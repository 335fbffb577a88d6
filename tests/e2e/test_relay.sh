#!/usr/bin/env bash
# test_relay.sh: end-to-end tests of vtpm-relay with real processes.
# unix sockets stand in for vsock (no vsock loopback here); a python fake VMM
# plays Firecracker's hybrid vsock socket ("CONNECT <port>\n" / "OK <port>\n").
# Everything lives in a temporary directory; every process started is killed
# on exit. Prints "relay: N passed, M failed"; exits non-zero on failure.
#
# usage: tests/e2e/test_relay.sh [path/to/vtpm-relay]   (default $BUILD/vtpm-relay)

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RELAY=${1:-${VTPM_RELAY:-${BUILD:-$ROOT/build}/vtpm-relay}}
PY=${PYTHON:-python3}

if [ ! -x "$RELAY" ]; then
	echo "test_relay: $RELAY not built (run make)" >&2
	exit 2
fi

T=$(mktemp -d /tmp/test_relay.XXXXXX)
PIDS=()
PASSED=0
FAILED=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# check NAME COMMAND...: one test case.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# bg COMMAND...: start in the background, remember the pid in $BG.
bg() {
	"$@" &
	BG=$!
	PIDS+=("$BG")
}

wait_sock() {
	local i
	for i in $(seq 1 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	echo "timed out waiting for socket $1" >&2
	return 1
}

# wait_exit PID SECONDS: waits for PID to exit, sets $RC.
wait_exit() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			RC=$?
			return 0
		fi
		sleep 0.05
	done
	RC=255
	return 1
}

# relay NAME ARGS...: starts vtpm-relay logging to $T/NAME.log, sets $RPID.
relay() {
	local name=$1
	shift
	bg "$RELAY" "$@" 2>"$T/$name.log"
	RPID=$BG
}

cat >"$T/helper.py" <<'PYEOF'
# Servers and clients for test_relay.sh. Every socket operation is bounded.
import hashlib, os, socket, sys, threading, time

TIMEOUT = 60

def unix_listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    s.bind(tmp)
    s.listen(128)
    os.rename(tmp, path)    # appears only once it listens
    return s

def serve(path, handler):
    ls = unix_listener(path)
    while True:
        c, _ = ls.accept()
        c.settimeout(TIMEOUT)
        threading.Thread(target=handler, args=(c,), daemon=True).start()

def echo(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        c.close()

def halfserver(c):
    # Answers only after the client's EOF: proves EOF was passed on while
    # the way back stayed open.
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.sendall(("got %d %s" % (n, h.hexdigest())).encode())
    c.close()

def banner(c, out):
    # Says its piece and half-closes first, then still takes the client's
    # data: proves EOF from the target leaves the client's direction open.
    c.sendall(b"banner")
    c.shutdown(socket.SHUT_WR)
    data = recv_all(c)
    with open(out, "a") as f:
        f.write("%d %s\n" % (len(data), hashlib.sha256(data).hexdigest()))
    c.close()

def crash(c):
    # Takes a little, then dies with unread data (the peer sees a reset).
    c.recv(1000)
    time.sleep(0.1)
    c.close()

def stall(c):
    time.sleep(TIMEOUT)     # never reads

def vmm(path, port, mode, errfile):
    def err(msg):
        with open(errfile, "a") as f:
            f.write(msg + "\n")

    def handler(c):
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            b = c.recv(1)
            if not b:
                err("EOF before CONNECT line")
                c.close()
                return
            line += b
        if line != ("CONNECT %s\n" % port).encode():
            err("bad request %r" % line)
            c.close()
            return
        if mode == "refuse":
            c.close()       # what Firecracker does when nothing listens on the port
            return
        time.sleep(0.05)
        c.setblocking(False)    # a timeout socket would wait despite MSG_DONTWAIT
        try:
            early = c.recv(1, socket.MSG_PEEK)
            if early:
                err("client bytes arrived before OK")
        except BlockingIOError:
            pass
        c.settimeout(TIMEOUT)
        c.sendall(b"OK 1073741824\n")
        echo(c)
    serve(path, handler)

def connect(path):
    if path.startswith("tcp:"):
        return socket.create_connection(("127.0.0.1", int(path[4:])), timeout=TIMEOUT)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s

def recv_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)

def bulk(path, nconn, size):
    # nconn connections at once, each sends size random bytes and half-closes,
    # and must get exactly the same bytes back (sha256) followed by EOF.
    results = [False] * nconn

    def one(i):
        try:
            s = connect(path)
            data = os.urandom(size)
            def send():
                for off in range(0, size, 32768):
                    s.sendall(data[off:off + 32768])
                s.shutdown(socket.SHUT_WR)
            t = threading.Thread(target=send)
            t.start()
            back = recv_all(s)
            t.join()
            s.close()
            results[i] = hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
            if not results[i]:
                print("conn %d: got %d bytes, sent %d" % (i, len(back), size), file=sys.stderr)
        except Exception as e:
            print("conn %d: %r" % (i, e), file=sys.stderr)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(nconn)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ok = sum(results)
    print("bulk: %d/%d connections intact" % (ok, nconn), file=sys.stderr)
    return ok == nconn

def halfclient(path):
    s = connect(path)
    data = os.urandom(100000)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s).decode()
    want = "got %d %s" % (len(data), hashlib.sha256(data).hexdigest())
    if reply != want:
        print("half-close: reply %r, want %r" % (reply, want), file=sys.stderr)
    return reply == want

def expect_closed(path, within, send=b""):
    # The relay must close this connection within `within` seconds.
    s = connect(path)
    s.settimeout(within)
    t0 = time.monotonic()
    try:
        if send:
            s.sendall(send)
        b = s.recv(1)
        closed = b == b""
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except socket.timeout:
        closed = False
    dt = time.monotonic() - t0
    print("closed=%s after %.2f s" % (closed, dt), file=sys.stderr)
    return closed and dt < within

def roundtrip(s):
    s.sendall(b"ping")
    b = b""
    while len(b) < 4:
        x = s.recv(4 - len(b))
        if not x:
            return False
        b += x
    return b == b"ping"

def limit(path, maxc):
    held = [connect(path) for _ in range(maxc)]
    if not all(roundtrip(s) for s in held):
        print("limit: held connections do not work", file=sys.stderr)
        return False
    if not expect_closed(path, 3):
        print("limit: connection beyond the limit was served", file=sys.stderr)
        return False
    held.pop().close()
    time.sleep(0.3)
    s = connect(path)
    ok = roundtrip(s)
    s.close()
    if not ok:
        print("limit: no service after a slot freed", file=sys.stderr)
    return ok

def idle(path, secs):
    s = connect(path)
    if not roundtrip(s):
        return False
    t0 = time.monotonic()
    s.settimeout(secs + 5)
    try:
        b = s.recv(1)
    except socket.timeout:
        return False
    dt = time.monotonic() - t0
    print("idle: closed after %.2f s" % dt, file=sys.stderr)
    return b == b"" and dt >= secs - 0.5

def backpressure(path, bound):
    # The target never reads: the relay must stop reading from us, so what
    # we manage to send stays bounded (relay ring + kernel socket buffers).
    s = connect(path)
    s.setblocking(False)
    chunk = b"\0" * 65536
    sent, last = 0, time.monotonic()
    while time.monotonic() - last < 1.0 and sent < 4 * bound:
        try:
            sent += s.send(chunk)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    print("backpressure: %d bytes accepted before the relay pushed back" % sent,
          file=sys.stderr)
    return 0 < sent < bound

def bannerclient(path, out):
    s = connect(path)
    got = recv_all(s)           # the target's EOF arrives first
    data = os.urandom(100000)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    rest = recv_all(s)
    s.close()
    want = "%d %s\n" % (len(data), hashlib.sha256(data).hexdigest())
    for _ in range(100):
        if os.path.exists(out) and open(out).read() == want:
            break
        time.sleep(0.05)
    ok = got == b"banner" and rest == b"" and open(out).read() == want
    if not ok:
        print("banner: got %r, server saw %r" % (got, open(out).read()), file=sys.stderr)
    return ok

def hold(path, secs, marker):
    s = connect(path)
    ok = roundtrip(s)
    open(marker, "w").close()
    time.sleep(secs)
    return ok

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "echo":
    serve(args[0], echo)
elif cmd == "halfserver":
    serve(args[0], halfserver)
elif cmd == "banner":
    serve(args[0], lambda c: banner(c, args[1]))
elif cmd == "crash":
    serve(args[0], crash)
elif cmd == "stall":
    serve(args[0], stall)
elif cmd == "vmm":
    vmm(args[0], args[1], args[2], args[3])
else:
    fn = {"bulk": lambda: bulk(args[0], int(args[1]), int(args[2])),
          "halfclient": lambda: halfclient(args[0]),
          "bannerclient": lambda: bannerclient(args[0], args[1]),
          "closed": lambda: expect_closed(args[0], float(args[1]),
                                          args[2].encode() if len(args) > 2 else b""),
          "limit": lambda: limit(args[0], int(args[1])),
          "idle": lambda: idle(args[0], float(args[1])),
          "backpressure": lambda: backpressure(args[0], int(args[1])),
          "hold": lambda: hold(args[0], float(args[1]), args[2])}[cmd]
    sys.exit(0 if fn() else 1)
PYEOF

h() { timeout 120 "$PY" "$T/helper.py" "$@"; }

log_has() { grep -q -- "$2" "$T/$1.log"; }

# 1. unix -> unix, 20 concurrent connections of 1 MiB each through an echo server.
bg "$PY" "$T/helper.py" echo "$T/echo.sock"
wait_sock "$T/echo.sock"
relay bulk --listen "unix:$T/r1.sock" --connect "unix:$T/echo.sock"
wait_sock "$T/r1.sock"
check "unix->unix: 20 x 1 MiB echoed intact" h bulk "$T/r1.sock" 20 1048576
check "relay still running after bulk" kill -0 "$RPID"
sleep 0.2
check "one open and one close line per connection" \
	test "$(grep -c ': open from ' "$T/bulk.log")" -eq 20 -a \
	"$(grep -c 'closed (done): client->target 1048576 bytes, target->client 1048576 bytes' "$T/bulk.log")" -eq 20
check "listening socket has mode 0600" test "$(stat -c %a "$T/r1.sock")" = 600

# 2. half-close: the client's EOF reaches the target, the answer still comes back.
bg "$PY" "$T/helper.py" halfserver "$T/half.sock"
wait_sock "$T/half.sock"
relay half --listen "unix:$T/r2.sock" --connect "unix:$T/half.sock"
wait_sock "$T/r2.sock"
check "half-close propagated, reverse direction kept open" h halfclient "$T/r2.sock"

# 2b. the other way round: the target half-closes first, the client keeps sending.
bg "$PY" "$T/helper.py" banner "$T/banner.sock" "$T/banner.out"
wait_sock "$T/banner.sock"
relay banner --listen "unix:$T/r2b.sock" --connect "unix:$T/banner.sock"
wait_sock "$T/r2b.sock"
check "half-close from the target, client direction kept open" h bannerclient "$T/r2b.sock" "$T/banner.out"

# 2c. many small connections at once.
check "unix->unix: 200 concurrent connections x 16 KiB" h bulk "$T/r1.sock" 200 16384

# 3. hybrid vsock: CONNECT 5000 / OK 1073741824 to a fake VMM, then echo.
bg "$PY" "$T/helper.py" vmm "$T/vmm.sock" 5000 ok "$T/vmm.err"
wait_sock "$T/vmm.sock"
relay hv --listen "unix:$T/r3.sock" --connect "hvsock:$T/vmm.sock:5000" --mode 0660
wait_sock "$T/r3.sock"
check "hvsock: 8 x 256 KiB echoed through the handshake" h bulk "$T/r3.sock" 8 262144
check "hvsock: exact CONNECT line, no bytes before OK" test ! -s "$T/vmm.err"
check "--mode 0660 applied" test "$(stat -c %a "$T/r3.sock")" = 660
[ -s "$T/vmm.err" ] && cat "$T/vmm.err"

# 4. hybrid vsock, nothing listening on the guest port: the VMM hangs up.
bg "$PY" "$T/helper.py" vmm "$T/vmm2.sock" 5000 refuse "$T/vmm2.err"
wait_sock "$T/vmm2.sock"
relay hvrefuse --listen "unix:$T/r4.sock" --connect "hvsock:$T/vmm2.sock:5000"
wait_sock "$T/r4.sock"
check "hvsock refused: client closed promptly" h closed "$T/r4.sock" 2 hello
sleep 0.1
check "hvsock refused: logged" log_has hvrefuse "connect hvsock:.*connection closed"

# 5. target down: the client is closed at once and the relay keeps serving.
relay down --listen "unix:$T/r5.sock" --connect "unix:$T/late.sock"
wait_sock "$T/r5.sock"
check "target down: client closed promptly" h closed "$T/r5.sock" 2
check "target down: client closed promptly (again)" h closed "$T/r5.sock" 2 data
bg "$PY" "$T/helper.py" echo "$T/late.sock"
wait_sock "$T/late.sock"
check "target back: relay serves again" h bulk "$T/r5.sock" 3 65536
check "target down: relay survived" kill -0 "$RPID"

# 5b. the target dies mid-connection: the client is cut off, the relay goes on.
bg "$PY" "$T/helper.py" crash "$T/crash.sock"
wait_sock "$T/crash.sock"
relay crash --listen "unix:$T/r5b.sock" --connect "unix:$T/crash.sock"
wait_sock "$T/r5b.sock"
check "target dies: client closed promptly" h closed "$T/r5b.sock" 3 "$(head -c 5000 /dev/zero | tr '\0' x)"
check "target dies: relay survived" kill -0 "$RPID"

# 6. connection limit: beyond --max-conns, refused; a freed slot serves again.
relay limit --listen "unix:$T/r6.sock" --connect "unix:$T/echo.sock" --max-conns 3
wait_sock "$T/r6.sock"
check "max-conns 3: 4th refused, slot reused" h limit "$T/r6.sock" 3
sleep 1.2
check "max-conns: refusal logged" log_has limit "refused 1 connection(s): limit of 3"

# 7. idle timeout.
relay idle --listen "unix:$T/r7.sock" --connect "unix:$T/echo.sock" --idle-timeout 1
wait_sock "$T/r7.sock"
check "idle-timeout 1: idle connection closed" h idle "$T/r7.sock" 1

# 8. backpressure: a target that never reads does not make the relay buffer more.
bg "$PY" "$T/helper.py" stall "$T/stall.sock"
wait_sock "$T/stall.sock"
relay bp --listen "unix:$T/r8.sock" --connect "unix:$T/stall.sock" --buffer 65536
wait_sock "$T/r8.sock"
check "backpressure: sender held back (< 4 MiB accepted)" h backpressure "$T/r8.sock" 4194304

# 9. tcp loopback listener (port 0, read back from the log) -> unix target.
relay tcp --listen "tcp:127.0.0.1:0" --connect "unix:$T/echo.sock"
PORT=
for i in $(seq 1 100); do
	PORT=$(sed -n 's/.*relaying tcp:127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/tcp.log")
	[ -n "$PORT" ] && break
	sleep 0.05
done
check "tcp listener on an ephemeral port" test -n "$PORT"
[ -n "$PORT" ] && check "tcp->unix: 4 x 256 KiB echoed intact" h bulk "tcp:$PORT" 4 262144

# 10. bad command lines are refused before anything starts.
check "refuses a remote tcp target" bash -c "! '$RELAY' --listen unix:$T/x.sock --connect tcp:10.1.2.3:80 2>/dev/null"
check "refuses hvsock as a listener" bash -c "! '$RELAY' --listen hvsock:$T/v.sock:5 --connect unix:$T/echo.sock 2>/dev/null"
check "refuses vsock target without CID" bash -c "! '$RELAY' --listen unix:$T/x.sock --connect vsock:5000 2>/dev/null"
check "refuses --buffer 10" bash -c "! '$RELAY' --listen unix:$T/x.sock --connect unix:$T/echo.sock --buffer 10 2>/dev/null"
check "-n checks the configuration" bash -c "'$RELAY' -n --listen vsock:5000 --connect vsock:3:5000 | grep -q 'configuration OK'"
check "live socket not stolen" bash -c "! timeout 5 '$RELAY' --listen unix:$T/r1.sock --connect unix:$T/echo.sock 2>/dev/null"

# 11. SIGTERM with connections open: exit 0, connections closed, socket removed.
relay term --listen "unix:$T/r9.sock" --connect "unix:$T/echo.sock"
TPID=$RPID
wait_sock "$T/r9.sock"
bg "$PY" "$T/helper.py" hold "$T/r9.sock" 30 "$T/held"
HOLD=$BG
for i in $(seq 1 100); do
	[ -e "$T/held" ] && break
	sleep 0.05
done
kill -TERM "$TPID"
wait_exit "$TPID" 5
check "SIGTERM: exit status 0" test "$RC" -eq 0
check "SIGTERM: socket file removed" test ! -e "$T/r9.sock"
check "SIGTERM: open connection closed and logged" log_has term "closed (relay stopping)"
kill "$HOLD" 2>/dev/null

relay int --listen "unix:$T/r10.sock" --connect "unix:$T/echo.sock"
wait_sock "$T/r10.sock"
kill -INT "$RPID"
wait_exit "$RPID" 5
check "SIGINT: exit status 0" test "$RC" -eq 0

# No relay may have died along the way (the ones still meant to run).
for name in bulk half banner hv hvrefuse down crash limit idle bp; do
	if grep -q -E 'error|fatal' "$T/$name.log"; then
		fail "relay $name logged an error"
		cat "$T/$name.log"
	fi
done

if [ "$FAILED" -ne 0 ]; then
	for f in "$T"/*.log; do
		echo "--- $f"
		tail -n 20 "$f"
	done
fi
echo "relay: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
