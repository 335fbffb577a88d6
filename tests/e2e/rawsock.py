#!/usr/bin/env python3
"""rawsock.py: raw bytes on a unix socket, for the e2e garbage tests.

usage: rawsock.py PATH ACTION...   (actions run in order; every wait is bounded)

  send HEX          send these bytes
  text STRING       send the string (\\n escapes allowed)
  rand N            send N random bytes
  fill N BYTE       send N copies of the hex byte
  shut              shut down our write side
  sleep SECS
  recv N SECS       read exactly N bytes; prints them as hex
  expect HEX SECS   read len(HEX) bytes, which must equal HEX
  line SECS         read one line; prints it
  line-has TEXT SECS  read one line, which must contain TEXT
  closed SECS       the peer must close (EOF or reset) within SECS; bytes
                    arriving first are printed and ignored
  open SECS         the peer must NOT close within SECS

A send that fails because the peer closed is not an error (the peer may
refuse mid-request); the next "closed" then succeeds at once.
Exit status 0 if every action succeeded; each failure is printed.
"""
import os
import select
import socket
import sys
import time


class Peer:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.eof = False
        self.buf = b""

    def send(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # what the peer sent before closing can still be read
            print("send: peer closed (%d bytes not all sent)" % len(data))

    def fill(self, deadline, want=None):
        """Reads until want bytes are buffered / a newline (want=-1) / EOF."""
        while not self.eof:
            if want is not None and want >= 0 and len(self.buf) >= want:
                return
            if want == -1 and b"\n" in self.buf:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return
            try:
                b = self.s.recv(65536)
            except ConnectionResetError:
                b = b""
            if not b:
                self.eof = True
            self.buf += b


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    p = Peer(argv[1])
    args = argv[2:]
    ok = True

    def need(n):
        nonlocal args
        if len(args) < n:
            raise SystemExit("rawsock: missing arguments")
        v, args = args[:n], args[n:]
        return v

    while args:
        act = need(1)[0]
        if act == "send":
            p.send(bytes.fromhex(need(1)[0]))
        elif act == "text":
            p.send(need(1)[0].encode().decode("unicode_escape").encode("latin-1"))
        elif act == "rand":
            p.send(os.urandom(int(need(1)[0])))
        elif act == "fill":
            n, b = need(2)
            p.send(bytes.fromhex(b) * int(n))
        elif act == "shut":
            try:
                p.s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif act == "sleep":
            time.sleep(float(need(1)[0]))
        elif act in ("recv", "expect"):
            what, secs = need(2)
            n = int(what) if act == "recv" else len(what) // 2
            p.fill(time.monotonic() + float(secs), n)
            got, p.buf = p.buf[:n], p.buf[n:]
            print("%s: %s" % (act, got.hex()))
            if len(got) != n or (act == "expect" and got != bytes.fromhex(what)):
                print("FAIL: %s %s: got %d bytes %s" % (act, what, len(got), got.hex()))
                ok = False
        elif act in ("line", "line-has"):
            text = need(1)[0] if act == "line-has" else None
            secs = need(1)[0]
            p.fill(time.monotonic() + float(secs), -1)
            i = p.buf.find(b"\n")
            line, p.buf = (p.buf[:i], p.buf[i + 1:]) if i >= 0 else (p.buf, b"")
            print("line: %s" % line.decode(errors="replace")[:300])
            if i < 0 or (text is not None and text.encode() not in line):
                print("FAIL: %s %s: no such line" % (act, text or ""))
                ok = False
        elif act == "closed":
            deadline = time.monotonic() + float(need(1)[0])
            while not p.eof and time.monotonic() < deadline:
                p.fill(deadline, len(p.buf) + 1)
            if p.buf:
                print("(ignored %d bytes before the close: %s)" % (len(p.buf), p.buf[:32].hex()))
                p.buf = b""
            if not p.eof:
                print("FAIL: peer did not close")
                ok = False
            else:
                print("closed")
        elif act == "open":
            p.fill(time.monotonic() + float(need(1)[0]), 1 << 30)
            if p.eof:
                print("FAIL: peer closed")
                ok = False
            else:
                print("still open")
        else:
            raise SystemExit("rawsock: unknown action " + act)
    p.s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
