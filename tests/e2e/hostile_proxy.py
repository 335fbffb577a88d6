#!/usr/bin/env python3
"""hostile_proxy.py: a hostile host between guests and vtpmd (test_hostile.sh).

usage: hostile_proxy.py LISTEN_PATH VTPMD_PATH PLAN_PATH LOG_PATH

Relays every connection on the unix socket LISTEN_PATH to VTPMD_PATH, frame
by frame (u16 big-endian length | body, docs/PROTOCOL.md section 1), and
tampers with one frame when a plan says so. The plan is a file holding one
line:

    DIR WHICH ACTION [ARG]

  DIR     g2d (guest to vtpmd) or d2g (vtpmd to guest)
  WHICH   a frame number in that direction of a NEW connection (0 = the first
          handshake frame; see test_hostile.sh for the numbering), or "next":
          the next frame in that direction on any connection, or "next:LEN":
          the next one whose body is LEN bytes (picks one command or
          response out of the several a tool sends)
  ACTION  drop            the frame is not forwarded
          dup             forwarded twice
          reorder         held until the next frame in that direction, which
                          is forwarded first
          replay          the previous frame in that direction is sent again
                          first (an old frame where a new one is expected)
          flip [OFF]      one bit flipped at body offset OFF (default: middle)
          short           length field and body one byte shorter
          cut             the first half of the frame, then both sides closed
          delay MS        this frame (and so everything behind it) held MS ms
          delayall MS     every frame of the connection held MS ms (not
                          one-shot: applies to connections until the plan is
                          removed)

A plan is read when a connection is accepted (numbered WHICH) and whenever
the file changes (next). Except delayall it fires once: the file is then
removed and a line "fired CONN DIR INDEX ACTION" appended to LOG_PATH, so
the test knows the tampering happened. Connections are logged there too.
"""
import os
import selectors
import socket
import sys
import time


class Conn:
    count = 0

    def __init__(self, g, d):
        Conn.count += 1
        self.id = Conn.count
        self.s = {"g2d": g, "d2g": d}          # source socket per direction
        self.dst = {"g2d": d, "d2g": g}
        self.inbuf = {"g2d": b"", "d2g": b""}
        self.idx = {"g2d": 0, "d2g": 0}
        self.prev = {"g2d": None, "d2g": None}
        self.held = {"g2d": None, "d2g": None}  # reorder
        self.out = {"g2d": [], "d2g": []}       # [(release time, bytes)]
        self.last_release = {"g2d": 0.0, "d2g": 0.0}
        self.plan = None                        # (dir, index, action, arg) for this conn
        self.closing = False
        self.delayall = 0.0


class Proxy:
    def __init__(self, listen, target, plan_path, log_path):
        self.target = target
        self.plan_path = plan_path
        self.log = open(log_path, "a", buffering=1)
        self.sel = selectors.DefaultSelector()
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(listen)
        except FileNotFoundError:
            pass
        self.ls.bind(listen)
        self.ls.listen(64)
        self.ls.setblocking(False)
        self.sel.register(self.ls, selectors.EVENT_READ, None)
        self.conns = []
        self.plan_mtime = None
        self.next_plan = None       # (dir, action, arg, body length or None) for "next"

    def read_plan(self):
        try:
            st = os.stat(self.plan_path)
            with open(self.plan_path) as f:
                words = f.read().split()
        except FileNotFoundError:
            return None
        if len(words) < 3:
            return None
        return st.st_mtime_ns, words

    def consume_plan(self):
        try:
            os.unlink(self.plan_path)
        except FileNotFoundError:
            pass
        self.plan_mtime = None

    def fired(self, c, d, i, action, n):
        self.log.write("fired %d %s %d %s (body %d bytes)\n" % (c.id, d, i, action, n))

    def accept(self):
        g, _ = self.ls.accept()
        d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            d.connect(self.target)
        except OSError as e:
            self.log.write("connect to vtpmd failed: %s\n" % e)
            g.close()
            return
        g.setblocking(False)
        d.setblocking(False)
        c = Conn(g, d)
        p = self.read_plan()
        if p is not None:
            words = p[1]
            if not words[1].startswith("next"):
                arg = words[3] if len(words) > 3 else None
                if words[2] == "delayall":
                    c.delayall = int(arg) / 1000.0
                else:
                    c.plan = (words[0], int(words[1]), words[2], arg)
                    self.consume_plan()
        self.log.write("conn %d opened%s\n" % (c.id, " (plan %s)" % (c.plan,)
                                              if c.plan else
                                              " (delay all %g s)" % c.delayall
                                              if c.delayall else ""))
        self.conns.append(c)
        self.sel.register(g, selectors.EVENT_READ, (c, "g2d"))
        self.sel.register(d, selectors.EVENT_READ, (c, "d2g"))

    def check_next_plan(self):
        p = self.read_plan()
        if p is None or p[0] == self.plan_mtime:
            return
        words = p[1]
        if words[1] == "next" or words[1].startswith("next:"):
            self.plan_mtime = p[0]
            want = int(words[1][5:]) if words[1].startswith("next:") else None
            self.next_plan = (words[0], words[2], words[3] if len(words) > 3 else None,
                              want)

    def send(self, c, d, data, delay=0.0):
        now = time.monotonic()
        t = max(now + delay + c.delayall, c.last_release[d])
        c.last_release[d] = t
        c.out[d].append((t, data))

    def close(self, c, why):
        if c.closing:
            return
        c.closing = True
        for s in (c.s["g2d"], c.s["d2g"]):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            try:
                s.close()
            except OSError:
                pass
        self.conns.remove(c)
        self.log.write("conn %d closed: %s\n" % (c.id, why))

    def frame(self, c, d, fr):
        i = c.idx[d]
        c.idx[d] += 1
        action = arg = None
        if c.plan is not None and c.plan[0] == d and c.plan[1] == i:
            action, arg = c.plan[2], c.plan[3]
            c.plan = None
        elif (self.next_plan is not None and self.next_plan[0] == d and
              self.next_plan[3] in (None, len(fr) - 2)):
            action, arg = self.next_plan[1], self.next_plan[2]
            self.next_plan = None
            self.consume_plan()
        if action is not None:
            self.fired(c, d, i, action, len(fr) - 2)
        if os.environ.get("HOSTILE_TRACE"):
            self.log.write("frame %d %s %d body %d\n" % (c.id, d, i, len(fr) - 2))
        prev, c.prev[d] = c.prev[d], fr
        if c.held[d] is not None:
            held, c.held[d] = c.held[d], None
            self.send(c, d, fr)
            self.send(c, d, held)
            return
        if action is None:
            self.send(c, d, fr)
        elif action == "drop":
            pass
        elif action == "dup":
            self.send(c, d, fr)
            self.send(c, d, fr)
        elif action == "reorder":
            c.held[d] = fr
        elif action == "replay":
            if prev is not None:
                self.send(c, d, prev)
            self.send(c, d, fr)
        elif action == "flip":
            off = int(arg) if arg is not None else (len(fr) - 2) // 2
            b = bytearray(fr)
            b[2 + off] ^= 0x01
            self.send(c, d, bytes(b))
        elif action == "short":
            n = len(fr) - 2 - 1
            self.send(c, d, n.to_bytes(2, "big") + fr[2:2 + n])
        elif action == "cut":
            self.send(c, d, fr[:len(fr) // 2])
            c.cut_after = True
        elif action == "delay":
            self.send(c, d, fr, int(arg) / 1000.0)
        else:
            self.log.write("unknown action %s: forwarded\n" % action)
            self.send(c, d, fr)

    def readable(self, c, d):
        try:
            data = c.s[d].recv(65536)
        except (ConnectionResetError, BlockingIOError):
            data = b"" if not isinstance(sys.exc_info()[1], BlockingIOError) else None
        if data is None:
            return
        if not data:
            # the source closed: flush what is queued, then close both
            c.eof_from = d
            try:
                self.sel.unregister(c.s[d])
            except (KeyError, ValueError):
                pass
            return
        c.inbuf[d] += data
        self.check_next_plan()
        while len(c.inbuf[d]) >= 2:
            n = int.from_bytes(c.inbuf[d][:2], "big")
            if len(c.inbuf[d]) < 2 + n:
                break
            fr, c.inbuf[d] = c.inbuf[d][:2 + n], c.inbuf[d][2 + n:]
            self.frame(c, d, fr)

    def flush(self):
        now = time.monotonic()
        wait = 0.5
        for c in list(self.conns):
            for d in ("g2d", "d2g"):
                q = c.out[d]
                while q and q[0][0] <= now:
                    _, data = q.pop(0)
                    try:
                        c.dst[d].setblocking(True)
                        c.dst[d].sendall(data)
                        c.dst[d].setblocking(False)
                    except OSError:
                        self.close(c, "write to the other side failed")
                        break
                if c.closing:
                    break
                if q:
                    wait = min(wait, max(0.0, q[0][0] - now))
            if c.closing:
                continue
            pending = c.out["g2d"] or c.out["d2g"]
            if getattr(c, "cut_after", False) and not pending:
                self.close(c, "cut mid-frame")
            elif getattr(c, "eof_from", None) and not pending:
                self.close(c, "%s side closed" % ("guest" if c.eof_from == "g2d" else "vtpmd"))
        return wait

    def run(self):
        while True:
            wait = self.flush()
            for key, _ in self.sel.select(wait):
                if key.data is None:
                    self.accept()
                    continue
                c, d = key.data
                if not c.closing and not getattr(c, "eof_from", None):
                    self.readable(c, d)


def main(argv):
    if len(argv) != 5:
        print(__doc__)
        return 2
    Proxy(argv[1], argv[2], argv[3], argv[4]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
