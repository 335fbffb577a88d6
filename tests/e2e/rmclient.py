#!/usr/bin/env python3
"""rmclient.py: one long-lived client of vtpm-guest's local socket that
holds TPM objects and sessions, for test_rm.sh (the resource manager).

usage: rmclient.py SOCKET ACTION...   (actions run in order)

  hello FLAGS         HELLO with these flags (0: resource manager, 1: raw)
  primary NAME        CreatePrimary (owner, ECC P-256 signing key); $NAME = its handle
  hashseq NAME        HashSequenceStart (SHA-256); $NAME = its handle
  session NAME        StartAuthSession (unbound, unsalted HMAC); $NAME = its handle
  readpublic H        ReadPublic(H)          H: a $NAME or 0x...; prints rc=
  flush H             FlushContext(H)
  restart H           PolicyRestart(H) (a session in the handle area)
  seqauth H S         SequenceUpdate(H) with session S in the authorization area
  getcap PROP         GetCapability(HANDLES, PROP, 64); prints handles=...
  send HEX            any TPM command; prints rc=
  expect RC           the last response code must be RC (hex)
  half                send half of a TPM_COMMAND request, then nothing more
  touch PATH          create PATH (a signal to the test)
  waitfile PATH       wait (at most 60 s) until PATH exists
Exit status 0 if every expect held.
"""
import os
import socket
import struct
import sys
import time


def frame(op, body):
    return struct.pack(">II", op, len(body)) + body


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(60)
        self.s.connect(path)
        self.vars = {}
        self.rc = None
        self.rsp = b""

    def recvn(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("server closed")
            b += c
        return b

    def request(self, op, body):
        self.s.sendall(frame(op, body))
        status, n = struct.unpack(">II", self.recvn(8))
        return status, self.recvn(n)

    def tpm(self, cmd):
        status, rsp = self.request(1, b"\x00" + cmd)
        if status != 0:
            raise RuntimeError("status %d" % status)
        self.rsp = rsp
        self.rc = struct.unpack(">I", rsp[6:10])[0]
        return rsp

    def handle(self, word):
        if word.startswith("$"):
            return self.vars[word[1:]]
        return int(word, 16)


def cmd(tag, cc, body):
    return struct.pack(">HII", tag, 10 + len(body), cc) + body


PW = struct.pack(">IIHBH", 9, 0x40000009, 0, 0, 0)	# authSize, TPM_RS_PW


def create_primary():
    sens = struct.pack(">HHH", 4, 0, 0)
    pub = struct.pack(">HHI", 0x0023, 0x000B, 0x00040072) + struct.pack(">H", 0)
    pub += struct.pack(">HHHHH", 0x0010, 0x0018, 0x000B, 0x0003, 0x0010)
    pub += struct.pack(">HH", 0, 0)
    body = struct.pack(">I", 0x40000001) + PW + sens + struct.pack(">H", len(pub)) + pub
    body += struct.pack(">HI", 0, 0)
    return cmd(0x8002, 0x131, body)


def main():
    c = Client(sys.argv[1])
    a = sys.argv[2:]
    ok = True
    i = 0
    while i < len(a):
        act = a[i]
        i += 1
        if act == "hello":
            st, body = c.request(3, struct.pack(">II", 1, int(a[i])))
            i += 1
            print("hello status=%d granted=%s" % (st, body[4:8].hex()))
        elif act in ("primary", "hashseq", "session"):
            name = a[i]
            i += 1
            if act == "primary":
                rsp = c.tpm(create_primary())
            elif act == "hashseq":
                rsp = c.tpm(cmd(0x8001, 0x186, struct.pack(">HH", 0, 0x000B)))
            else:
                body = struct.pack(">II", 0x40000007, 0x40000007)
                body += struct.pack(">H", 16) + os.urandom(16) + struct.pack(">H", 0)
                body += struct.pack(">BHH", 0, 0x0010, 0x000B)
                rsp = c.tpm(cmd(0x8001, 0x176, body))
            if c.rc != 0:
                print("%s: rc=0x%x" % (act, c.rc))
                ok = False
                continue
            c.vars[name] = struct.unpack(">I", rsp[10:14])[0]
            print("%s=0x%08x" % (name, c.vars[name]))
        elif act in ("readpublic", "flush", "restart"):
            h = c.handle(a[i])
            i += 1
            cc = {"readpublic": 0x173, "flush": 0x165, "restart": 0x180}[act]
            c.tpm(cmd(0x8001, cc, struct.pack(">I", h)))
            print("%s 0x%08x rc=0x%x" % (act, h, c.rc))
        elif act == "seqauth":
            h, s = c.handle(a[i]), c.handle(a[i + 1])
            i += 2
            auth = struct.pack(">IHBH", s, 0, 1, 0)
            body = struct.pack(">II", h, len(auth)) + auth + struct.pack(">H", 3) + b"abc"
            c.tpm(cmd(0x8002, 0x15C, body))
            print("seqauth 0x%08x 0x%08x rc=0x%x" % (h, s, c.rc))
        elif act == "getcap":
            prop = int(a[i], 16)
            i += 1
            rsp = c.tpm(cmd(0x8001, 0x17A, struct.pack(">III", 1, prop, 64)))
            if c.rc == 0:
                n = struct.unpack(">I", rsp[15:19])[0]
                hs = struct.unpack(">%dI" % n, rsp[19:19 + 4 * n])
                print("handles=" + ",".join("0x%08x" % h for h in hs))
            else:
                print("getcap rc=0x%x" % c.rc)
        elif act == "send":
            c.tpm(bytes.fromhex(a[i]))
            i += 1
            print("rc=0x%x" % c.rc)
        elif act == "expect":
            want = int(a[i], 16)
            i += 1
            if c.rc != want:
                print("FAIL: rc 0x%x, want 0x%x" % (c.rc, want))
                ok = False
        elif act == "half":
            req = frame(1, b"\x00" + cmd(0x8001, 0x17B, struct.pack(">H", 8)))
            c.s.sendall(req[:len(req) // 2])
            print("sent half a request")
        elif act == "touch":
            open(a[i], "w").close()
            i += 1
        elif act == "waitfile":
            end = time.time() + 60
            while not os.path.exists(a[i]) and time.time() < end:
                time.sleep(0.05)
            i += 1
        else:
            print("unknown action " + act)
            return 2
        sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
