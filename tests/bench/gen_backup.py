#!/usr/bin/env python3
"""gen_backup.py: writes a valid vtpmd backup of N synthetic instances,
implemented from docs/BACKUP-FORMAT.md and storage/seal.h alone (a second
implementation of the format), for the operations benchmark.

usage: gen_backup.py ROOT_KEY_FILE OUT N [BLOB_BYTES]

Each instance gets a random uuid and data key (wrapped by the root key,
"VTK1"), an identity, and one sealed permanent blob ("VTB1", generation 1)
of BLOB_BYTES random plaintext bytes (default 4096; libtpms permanent state
is a few KiB for a fresh TPM). The file is MACed with the backup MAC key
derived from the root key, so `vtpmctl restore` accepts it.
Needs libsodium (through ctypes) and nothing else.
"""
import ctypes
import ctypes.util
import hashlib
import os
import struct
import sys
import time

lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if lib.sodium_init() < 0:
    sys.exit("libsodium does not start")
enc = lib.crypto_aead_xchacha20poly1305_ietf_encrypt
enc.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_ulonglong), ctypes.c_char_p,
                ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_void_p,
                ctypes.c_char_p, ctypes.c_char_p]


def aead(key, nonce, ad, pt):
    out = ctypes.create_string_buffer(len(pt) + 16)
    clen = ctypes.c_ulonglong(0)
    if enc(out, ctypes.byref(clen), pt, len(pt), ad, len(ad), None, nonce, key) != 0:
        sys.exit("encrypt failed")
    return out.raw[:clen.value]


def b2(data, key=None, label=None):
    if key is not None:
        return hashlib.blake2b(label, digest_size=32, key=key).digest()
    return hashlib.blake2b(data, digest_size=32).digest()


def main():
    root_path, out_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    blob_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
    kek = open(root_path, "rb").read()
    assert len(kek) == 32
    kid = b2(None, kek, b"vtpmd-kid-v1")[:8]
    mac_key = b2(None, kek, b"vtpmd-backup-mac-v1")
    now = int(time.time())

    names, sections, entries = [], [], []
    for i in range(n):
        name = ("bench-%08d" % i).encode()
        uuid = os.urandom(16)
        dek = os.urandom(32)
        # wrapped DEK: "VTK1" | kid | u32 version | nonce | ct | tag; AD = hdr || uuid || label
        hdr = b"VTK1" + kid + struct.pack(">I", 1)
        nonce = os.urandom(24)
        wdek = hdr + nonce + aead(kek, nonce, hdr + uuid + b"vtpmd-dek-v1", dek)
        assert len(wdek) == 88
        # sealed blob: "VTB1" | type | 0 | 0 0 | u64 gen | kid | nonce | ct | tag
        bhdr = b"VTB1" + bytes([1, 0, 0, 0]) + struct.pack(">Q", 1) + kid
        bnonce = os.urandom(24)
        blob = bhdr + bnonce + aead(dek, bnonce, bhdr + uuid + b"vtpmd-blob-v1",
                                    os.urandom(blob_bytes))
        meas = hashlib.sha384(b"bench-measurement").digest()
        host = hashlib.sha256(name).digest()
        rec = (bytes([1, len(name)]) + name + uuid + meas + host +
               struct.pack(">QQQ", now, 1, 0) + bytes(32) +
               struct.pack(">IIH", 0, 2, 88) + wdek)
        sec = (b"VINS" + struct.pack(">H", len(rec)) + rec + struct.pack(">I", len(blob)) +
               blob + struct.pack(">I", 0))
        names.append(name)
        sections.append(sec)
        entries.append((name, uuid))

    data_off = 120 + 184 * n
    head = (b"VBAK" + struct.pack(">HHQ", 1, 1, now) + b"0.1.0-bench".ljust(32, b"\0") +
            os.urandom(16) + kid + struct.pack(">IIQ", 1, n, sum(len(s) for s in sections)))
    head += b2(head)
    out = bytearray(head)
    off = data_off
    for i, ((name, uuid), sec) in enumerate(zip(entries, sections)):
        e = (bytes([len(name)]) + name).ljust(64, b"\0") + uuid + struct.pack(">QQI", 1, 0, 0)
        e += kid + struct.pack(">QI", off, len(sec)) + b2(sec)
        e += b2(e + struct.pack(">I", i))
        out += e
        off += len(sec)
    for sec in sections:
        out += sec
    mac = hashlib.blake2b(bytes(out), digest_size=32, key=mac_key).digest()
    out += b"VEND" + mac
    out += b2(bytes(out))
    with open(out_path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
