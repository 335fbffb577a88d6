#!/usr/bin/env python3
# tests/e2e/swtpm_ctl.py: a raw client of a swtpm-compatible endpoint for the
# e2e tests (test_swtpm.sh, test_resilience.sh): speaks the control channel
# (u32 BE command code + body; the answer is read until the server goes
# quiet) and the data channel (raw TPM 2.0 commands) byte by byte, so tests
# can send what no well-behaved client would. Every socket call is bounded.
#
#   swtpm_ctl.py ctrl CTRLPATH HEX          request bytes -> answer hex ("closed" on EOF)
#   swtpm_ctl.py data DATAPATH HEX          one TPM command -> response hex or "closed"
#   swtpm_ctl.py data-raw DATAPATH HEX      sends HEX as is, prints what comes back
#   swtpm_ctl.py pcr-extend DATAPATH PCR    PCR_Extend(PCR, sha256 01..01) -> rc hex
#   swtpm_ctl.py pcr-read DATAPATH PCR      PCR_Read(sha256:PCR) -> digest hex
#   swtpm_ctl.py getrandom DATAPATH         GetRandom(8) -> rc hex
#   swtpm_ctl.py hangs-up DATAPATH HEX      sends HEX, prints the answer, then "closed"
#                                           if the server hung up within 2 s, else "open"
import socket
import struct
import sys

TIMEOUT = 20


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def read_quiet(s, first=TIMEOUT, quiet=0.3):
    """Everything the server sends until it is quiet for `quiet` seconds."""
    out = b""
    s.settimeout(first)
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
        if not b:
            return out, True
        out += b
        s.settimeout(quiet)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            return None
        out += b
    return out


def tpm_transact(path, cmd):
    s = connect(path)
    s.sendall(cmd)
    hdr = recv_exact(s, 10)
    if hdr is None:
        return None
    size = struct.unpack(">I", hdr[2:6])[0]
    rest = recv_exact(s, size - 10) if size > 10 else b""
    s.close()
    return None if rest is None else hdr + rest


def rc_of(rsp):
    return "%x" % struct.unpack(">I", rsp[6:10])[0]


def pcr_select(pcr):
    sel = bytearray(3)
    sel[pcr // 8] |= 1 << (pcr % 8)
    return struct.pack(">IHB", 1, 0x000B, 3) + bytes(sel)


def main():
    op, path = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else ""
    if op == "ctrl":
        s = connect(path)
        try:
            s.sendall(bytes.fromhex(arg))
        except OSError:
            pass        # the server may hang up on an oversized request
        out, closed = read_quiet(s)
        print(out.hex() if out else ("closed" if closed else "none"))
    elif op in ("data", "data-raw"):
        if op == "data":
            rsp = tpm_transact(path, bytes.fromhex(arg))
            print("closed" if rsp is None else rsp.hex())
        else:
            s = connect(path)
            s.sendall(bytes.fromhex(arg))
            out, closed = read_quiet(s)
            print(out.hex() if out else ("closed" if closed else "none"))
    elif op == "hangs-up":
        s = connect(path)
        try:
            s.sendall(bytes.fromhex(arg))
        except OSError:
            pass
        out, closed = read_quiet(s, quiet=2.0)
        print(out.hex() if out else "none", "closed" if closed else "open")
    elif op == "pcr-extend":
        pcr = int(arg)
        body = struct.pack(">I", pcr)
        auth = struct.pack(">IHBH", 0x40000009, 0, 0, 0)   # TPM_RS_PW, empty
        body += struct.pack(">I", len(auth)) + auth
        body += struct.pack(">IH", 1, 0x000B) + b"\x01" * 32
        cmd = struct.pack(">HII", 0x8002, 10 + len(body), 0x182) + body
        rsp = tpm_transact(path, cmd)
        print("closed" if rsp is None else rc_of(rsp))
    elif op == "pcr-read":
        sel = pcr_select(int(arg))
        cmd = struct.pack(">HII", 0x8001, 10 + len(sel), 0x17E) + sel
        rsp = tpm_transact(path, cmd)
        if rsp is None or rc_of(rsp) != "0":
            print("error" if rsp is None else "rc=" + rc_of(rsp))
        else:
            print(rsp[-32:].hex())      # the one digest ends the response
    elif op == "getrandom":
        rsp = tpm_transact(path, struct.pack(">HIIH", 0x8001, 12, 0x17B, 8))
        print("closed" if rsp is None else rc_of(rsp))
    else:
        sys.exit("unknown op " + op)


if __name__ == "__main__":
    main()
