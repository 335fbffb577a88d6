#!/usr/bin/env python3
"""bkfile.py: test helper for vtpmd backup/export files (docs/BACKUP-FORMAT.md).

  flip FILE OUT OFFSET            copy FILE to OUT with byte OFFSET xor 0x5a
  positions LAYOUT FILESIZE [N]   sample offsets to damage, one per line as
                                  "OFFSET NAME" (NAME "-" when the byte belongs to
                                  no instance); LAYOUT is `vtpmctl --json verify
                                  --layout` output
  forge-identity IN OUT HOSTBYTE  rewrite the host data (the identity) of the
                                  first instance and recompute every unkeyed
                                  checksum, as an attacker without the MAC key
                                  could: only the MAC can tell
"""
import hashlib
import json
import random
import struct
import sys

HEAD = 120
ENTRY = 184
TRAILER = 68


def b2(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def flip(src, dst, off):
    data = bytearray(open(src, "rb").read())
    data[off] ^= 0x5A
    open(dst, "wb").write(data)


def positions(layout, size, n):
    insts = []
    for line in open(layout):
        line = line.strip()
        if not line.startswith("{"):
            continue
        o = json.loads(line)
        if "instance" in o and "entry" in o:
            insts.append(o)
    out = []
    # the parts that belong to no instance
    for off in (0, 3, 5, 7, 8, 20, 60, 75, 80, 90, 119, size - 68, size - 50, size - 33, size - 1):
        out.append((off, "-"))
    rnd = random.Random(7)
    for o in insts:
        eo, el = o["entry"]
        do, dl = o["data"]
        name = o["instance"]
        # entry: name, uuid, generations, offset field, checksums; data: header, record, blobs
        for off in (eo, eo + 1, eo + 64, eo + 80, eo + 108, eo + 120, eo + el - 1,
                    do, do + 4, do + 8, do + 40, do + dl // 2, do + dl - 1,
                    do + rnd.randrange(dl)):
            out.append((off, name))
    for _ in range(n):
        off = rnd.randrange(size)
        name = "-"
        for o in insts:
            eo, el = o["entry"]
            do, dl = o["data"]
            if eo <= off < eo + el or do <= off < do + dl:
                name = o["instance"]
        out.append((off, name))
    for off, name in out:
        print(off, name)


def forge_identity(src, dst, hostbyte):
    data = bytearray(open(src, "rb").read())
    count = struct.unpack(">I", data[76:80])[0]
    assert count >= 1
    e = HEAD
    off, length = struct.unpack(">QI", data[e + 108:e + 120])
    rec = off + 6
    nlen = data[rec + 1]
    host = rec + 2 + nlen + 16 + 48
    data[host:host + 32] = bytes([hostbyte]) * 32
    data[e + 120:e + 152] = b2(bytes(data[off:off + length]))
    data[e + 152:e + 184] = b2(bytes(data[e:e + 152]) + struct.pack(">I", 0))
    data[-32:] = b2(bytes(data[:-32]))
    open(dst, "wb").write(data)


def main():
    cmd = sys.argv[1]
    if cmd == "flip":
        flip(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "positions":
        positions(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 20)
    elif cmd == "forge-identity":
        forge_identity(sys.argv[2], sys.argv[3], int(sys.argv[4], 16))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
