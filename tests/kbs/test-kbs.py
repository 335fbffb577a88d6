#!/usr/bin/python3
# test-kbs.py: a small Trustee-KBS-compatible key broker for vtpmd's tests.
#
# It speaks the RCAR protocol 0.4.0 as Trustee does (docs/KBS.md,
# ../shared/reference/kbs-protocol.md) with an implementation independent of
# vtpmd's C code: Python's json (sort_keys) for the canonical JSON and
# python3-cryptography for ECDH-ES+A256KW, RSA-OAEP-256 and A256GCM.
#
#   POST /kbs/v0/auth      version must be exactly "0.4.0"; answers a
#                          32-byte nonce and sets the kbs-session-id cookie
#   POST /kbs/v0/attest    checks, as Trustee does, that runtime-data.nonce
#                          is the session's and, with
#                          D = SHA-384(JCS({"additional-evidence","nonce","tee-pubkey"})):
#                          tee "sample": primary_evidence.report_data == base64(D);
#                          tee "snp": SnpEvidence as Trustee's snp verifier
#                          reads it: the 1184-byte report rebuilt from its JSON
#                          fields, REPORT_DATA == D || 0x00*16, the VCEK from
#                          cert_chain signed by the ASK, the ASK by the ARK
#                          given with --snp-ark (pinned; a chain ARK must be
#                          that one), and the report's ECDSA P-384 signature
#                          by the VCEK. Anything else is AttestationError.
#   GET  /kbs/v0/resource/REPO/TYPE/TAG
#                          attested sessions only (cookie); answers a
#                          flattened JWE to the session's tee-pubkey
#
# Resources are files DIR/resources/REPO/TYPE/TAG, read at each request; set
# them with the set-key command. The mode (DIR/mode, read at each request,
# or --mode) makes it misbehave on purpose:
#   normal       as above
#   deny         resource requests get 401 PolicyDeny
#   deny-attest  attestation gets 401 AttestationError
#   garbage      resource requests get 200 with bytes that are not a JWE
#   bad-tag      resource requests get a JWE whose tag does not verify
#   wrong-key    resources hold another (fixed, random) 32-byte key
#   slow         every request waits 2 s first
# Accepted snp evidence is also written to DIR/last-snp.json with its digest.
#   replay       snp: the evidence of the last session it accepted replaces the
#                evidence sent (a genuine, signed report bound to another
#                session's nonce and key): must be refused for its binding
# It makes its own test CA and server certificate (127.0.0.1) in DIR at
# start (or keeps those an earlier init/serve made), listens on 127.0.0.1
# only, and writes its port to DIR/port.
#
# usage: test-kbs.py serve --dir DIR [--port N] [--http] [--mode MODE]
#        test-kbs.py init --dir DIR          only make the TLS material
#        test-kbs.py set-key --dir DIR --resource R/T/G (--version N --key-hex HEX | --raw-hex HEX)
#        (serve --snp-ark PEM: verify tee "snp" evidence against that ARK)
#        test-kbs.py verify-snp --ark PEM EVIDENCE.json DIGEST_HEX   one SnpEvidence, offline
#        test-kbs.py self-test VECTORS.json      reproduce the shared JWE vector and
#                                                cross-check with python3-jwcrypto
#        test-kbs.py make-rsa-vector OUT.json    an RSA-OAEP-256 vector for the unit test

import argparse
import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import re
import socketserver
import ssl
import sys
import threading
import time
import uuid



def import_crypto():
    # python3-cryptography, imported only by the commands that need it (it
    # takes a while to load; set-key stays quick)
    global x509, hashes, serialization, ec, padding, rsa, AESGCM, ConcatKDFHash
    global aes_key_wrap, NameOID
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    from cryptography.x509.oid import NameOID

PROTOCOL = "0.4.0"
TEES = {"az-snp-vtpm", "az-tdx-vtpm", "nvidia", "sgx", "snp", "tdx", "cca", "csv",
        "se", "hygondcu", "tpm", "sample", "sampledevice"}
SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+[A-Za-z0-9_\-\.]*$")
ERR = "https://github.com/confidential-containers/kbs/errors/"
SESSION_MINUTES = 5


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    if not isinstance(s, str) or "=" in s:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jcs(obj):
    # RFC 8785 for what RCAR carries (strings, objects): sorted keys, no
    # whitespace, UTF-8 as is.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def u32(n):
    return n.to_bytes(4, "big")


def make_jwe(tee_pubkey, plaintext, eph=None, cek=None, iv=None):
    """Encrypts plaintext to a tee-pubkey JWK as Trustee's kbs/src/jwe does."""
    cek = cek if cek is not None else os.urandom(32)
    iv = iv if iv is not None else os.urandom(12)
    if tee_pubkey["kty"] == "EC":
        if tee_pubkey.get("crv") != "P-256" or tee_pubkey.get("alg") != "ECDH-ES+A256KW":
            raise ValueError("unsupported EC tee-pubkey")
        x = int.from_bytes(b64u_dec(tee_pubkey["x"]), "big")
        y = int.from_bytes(b64u_dec(tee_pubkey["y"]), "big")
        peer = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        eph = eph if eph is not None else ec.generate_private_key(ec.SECP256R1())
        z = eph.exchange(ec.ECDH(), peer)
        alg = b"ECDH-ES+A256KW"
        otherinfo = u32(len(alg)) + alg + u32(0) + u32(0) + u32(256)
        kek = ConcatKDFHash(algorithm=hashes.SHA256(), length=32,
                            otherinfo=otherinfo).derive(z)
        ek = aes_key_wrap(kek, cek)
        pn = eph.public_key().public_numbers()
        header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
                  "epk": {"crv": "P-256", "kty": "EC",
                          "x": b64u(pn.x.to_bytes(32, "big")),
                          "y": b64u(pn.y.to_bytes(32, "big"))}}
    elif tee_pubkey["kty"] == "RSA":
        if tee_pubkey.get("alg") != "RSA-OAEP-256":
            raise ValueError("unsupported RSA alg")
        n = int.from_bytes(b64u_dec(tee_pubkey["n"]), "big")
        e = int.from_bytes(b64u_dec(tee_pubkey["e"]), "big")
        pub = rsa.RSAPublicNumbers(e, n).public_key()
        ek = pub.encrypt(cek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                           algorithm=hashes.SHA256(), label=None))
        header = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    else:
        raise ValueError("unsupported tee-pubkey kty")
    protected = b64u(json.dumps(header, separators=(",", ":")).encode())
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode())
    return {"protected": protected, "encrypted_key": b64u(ek), "iv": b64u(iv),
            "ciphertext": b64u(sealed[:-16]), "tag": b64u(sealed[-16:])}


def check_tee_pubkey(k):
    if not isinstance(k, dict):
        raise ValueError("tee-pubkey is not an object")
    if k.get("kty") == "EC":
        if k.get("crv") != "P-256" or k.get("alg") != "ECDH-ES+A256KW":
            raise ValueError("EC tee-pubkey must be P-256 with ECDH-ES+A256KW")
        x, y = b64u_dec(k["x"]), b64u_dec(k["y"])
        if len(x) != 32 or len(y) != 32:
            raise ValueError("EC coordinates must be 32 bytes")
        ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                      ec.SECP256R1()).public_key()
    elif k.get("kty") == "RSA":
        if k.get("alg") not in ("RSA-OAEP-256", "RSA1_5"):
            raise ValueError("RSA tee-pubkey alg")
        b64u_dec(k["n"]), b64u_dec(k["e"])
    else:
        raise ValueError("tee-pubkey kty")


# ---- SEV-SNP evidence (Trustee's SnpEvidence JSON) -------------------------

def snp_tcb_bytes(t, turin):
    # sev::TcbVersion back to the 8 raw bytes of its generation
    if turin:
        return bytes([t["fmc"], t["bootloader"], t["tee"], t["snp"], 0, 0, 0, t["microcode"]])
    if t.get("fmc") is not None:
        raise ValueError("fmc set on a pre-Turin TCB")
    return bytes([t["bootloader"], t["tee"], 0, 0, 0, 0, t["snp"], t["microcode"]])


def snp_report_bytes(r):
    # The report, field by field, at the offsets of AMD's ATTESTATION_REPORT.
    out = bytearray(1184)

    def put(off, b):
        out[off:off + len(b)] = b

    def arr(name, n):
        v = r[name]
        if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int) and 0 <= x < 256 for x in v):
            raise ValueError("%s must be %d bytes" % (name, n))
        return bytes(v)

    def le(v, n):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError("integer expected")
        return v.to_bytes(n, "little")

    version = r["version"]
    turin = version >= 3 and r.get("cpuid_fam_id") == 0x1A
    put(0x000, le(version, 4))
    put(0x004, le(r["guest_svn"], 4))
    put(0x008, le(r["policy"], 8))
    put(0x010, arr("family_id", 16))
    put(0x020, arr("image_id", 16))
    put(0x030, le(r["vmpl"], 4))
    put(0x034, le(r["sig_algo"], 4))
    put(0x038, snp_tcb_bytes(r["current_tcb"], turin))
    put(0x040, le(r["plat_info"], 8))
    put(0x048, le(r["key_info"], 4))
    put(0x050, arr("report_data", 64))
    put(0x090, arr("measurement", 48))
    put(0x0C0, arr("host_data", 32))
    put(0x0E0, arr("id_key_digest", 48))
    put(0x110, arr("author_key_digest", 48))
    put(0x140, arr("report_id", 32))
    put(0x160, arr("report_id_ma", 32))
    put(0x180, snp_tcb_bytes(r["reported_tcb"], turin))
    if version >= 3:
        put(0x188, bytes([r["cpuid_fam_id"], r["cpuid_mod_id"], r["cpuid_step"]]))
    put(0x1A0, arr("chip_id", 64))
    put(0x1E0, snp_tcb_bytes(r["committed_tcb"], turin))
    for off, name in ((0x1E8, "current"), (0x1EC, "committed")):
        v = r[name]
        put(off, bytes([v["build"], v["minor"], v["major"]]))
    put(0x1F0, snp_tcb_bytes(r["launch_tcb"], turin))
    if version >= 5:
        put(0x1F8, le(r["launch_mit_vector"], 8))
        put(0x200, le(r["current_mit_vector"], 8))
    sig = r["signature"]
    for off, name in ((0x2A0, "r"), (0x2E8, "s")):
        v = sig[name]
        if not isinstance(v, list) or len(v) != 72:
            raise ValueError("signature.%s must be 72 bytes" % name)
        put(off, bytes(v))
    return bytes(out)


def snp_verify(ev, digest, ark_pem):
    # Raises ValueError naming what failed; returns the report bytes.
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    if not isinstance(ev, dict) or set(ev) != {"attestation_report", "cert_chain"}:
        raise ValueError("SnpEvidence needs exactly attestation_report and cert_chain")
    report = snp_report_bytes(ev["attestation_report"])
    if not 2 <= int.from_bytes(report[0:4], "little") <= 5:
        raise ValueError("report version")
    if int.from_bytes(report[0x34:0x38], "little") != 1:
        raise ValueError("sig_algo is not ECDSA P-384 with SHA-384")
    want = digest + bytes(16)
    if report[0x50:0x90] != want:
        raise ValueError("REPORT_DATA is different from the runtime data's digest "
                         "(got %s want %s)" % (report[0x50:0x90].hex(), want.hex()))
    chain = ev["cert_chain"]
    if not isinstance(chain, list):
        raise ValueError("test-kbs needs cert_chain (it fetches nothing from AMD)")
    certs = {}
    for c in chain:
        certs[c["cert_type"]] = x509.load_der_x509_certificate(bytes(c["data"]))
    pinned = x509.load_pem_x509_certificate(ark_pem)
    if "ARK" in certs and certs["ARK"].fingerprint(hashes.SHA256()) != pinned.fingerprint(hashes.SHA256()):
        raise ValueError("the chain's ARK is not the pinned ARK")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    leaf = certs.get("VCEK") or certs.get("VLEK")
    if leaf is None or "ASK" not in certs:
        raise ValueError("cert_chain needs a VCEK (or VLEK) and the ASK")
    for child, issuer, what in ((certs["ASK"], pinned, "ASK by ARK"), (leaf, certs["ASK"], "VCEK by ASK")):
        try:
            issuer.public_key().verify(child.signature, child.tbs_certificate_bytes, pss,
                                       hashes.SHA384())
        except Exception:
            raise ValueError("certificate signature %s does not verify" % what)
    r = int.from_bytes(report[0x2A0:0x2E8], "little")
    s_ = int.from_bytes(report[0x2E8:0x330], "little")
    try:
        leaf.public_key().verify(encode_dss_signature(r, s_), report[:0x2A0],
                                 ec.ECDSA(hashes.SHA384()))
    except Exception:
        raise ValueError("the report signature does not verify with the VCEK")
    return report


# ---- TLS material --------------------------------------------------------

def make_ca(d, name, cn):
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    with open(os.path.join(d, name), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_tls(d):
    if all(os.path.exists(os.path.join(d, f))
           for f in ("ca.pem", "other-ca.pem", "server.pem", "server.key")):
        return      # made by an earlier run (init or serve): keep the same CA
    ca_key, ca = make_ca(d, "ca.pem", "vtpmd test KBS CA (tests only)")
    make_ca(d, "other-ca.pem", "an unrelated CA (tests only)")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(d, "server.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(os.path.join(d, "server.key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


# ---- the broker ----------------------------------------------------------

class Broker:
    def __init__(self, d, mode, snp_ark=None):
        self.dir = d
        self.mode = mode
        self.snp_ark = snp_ark
        self.last_snp = None
        self.sessions = {}
        self.lock = threading.Lock()
        self.wrong_key = os.urandom(32)
        self.stats = {"auth": 0, "attest": 0, "released": 0, "refused": 0,
                      "snp": 0, "binding-refused": 0}

    def current_mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                return f.read().strip() or self.mode
        except FileNotFoundError:
            return self.mode

    def count(self, what):
        with self.lock:
            self.stats[what] += 1
            tmp = os.path.join(self.dir, "stats.json.tmp")
            with open(tmp, "w") as f:
                json.dump(self.stats, f)
            os.replace(tmp, os.path.join(self.dir, "stats.json"))


def error(typ, detail):
    return {"type": ERR + typ, "detail": detail}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-kbs/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("test-kbs: %s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()

    def note(self, msg):
        sys.stderr.write("test-kbs: %s\n" % msg)
        sys.stderr.flush()

    def reply(self, status, obj=None, raw=None, cookie=None):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cookie is not None:
            self.send_header("Set-Cookie", "kbs-session-id=%s; Path=/kbs/v0" % cookie)
        self.end_headers()
        self.wfile.write(body)

    def session(self):
        hdr = self.headers.get("Cookie", "")
        m = re.search(r"(?:^|;\s*)kbs-session-id=([0-9a-f]{32})(?:;|$)", hdr)
        if not m:
            return None, None
        with self.server.broker.lock:
            s = self.server.broker.sessions.get(m.group(1))
        if s is None or time.time() > s["expires"]:
            return m.group(1), None
        return m.group(1), s

    def body_json(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > 1 << 20:
            raise ValueError("body too large")
        return json.loads(self.rfile.read(n))

    def do_POST(self):
        b = self.server.broker
        if b.current_mode() == "slow":
            time.sleep(2)
        try:
            req = self.body_json()
        except (ValueError, json.JSONDecodeError) as e:
            return self.reply(400, error("InvalidRequest", "bad JSON: %s" % e))
        if self.path == "/kbs/v0/auth":
            return self.auth(req)
        if self.path == "/kbs/v0/attest":
            return self.attest(req)
        return self.reply(404, error("InvalidRequestPath", "no such endpoint"))

    def auth(self, req):
        b = self.server.broker
        if not isinstance(req, dict) or req.get("version") != PROTOCOL:
            return self.reply(401, error("ProtocolVersion", "expected version %s, got %r"
                                         % (PROTOCOL, req.get("version") if isinstance(req, dict) else None)))
        if req.get("tee") not in TEES or "extra-params" not in req:
            return self.reply(401, error("InvalidRequest", "bad tee or no extra-params"))
        sid = uuid.uuid4().hex
        nonce = base64.b64encode(os.urandom(32)).decode()
        with b.lock:
            b.sessions[sid] = {"nonce": nonce, "tee": req["tee"], "attested": False,
                               "expires": time.time() + SESSION_MINUTES * 60}
        b.count("auth")
        self.reply(200, {"nonce": nonce, "extra-params": ""}, cookie=sid)

    def attest(self, req):
        b = self.server.broker
        sid, s = self.session()
        if s is None:
            return self.reply(401, error("UnAuthenticatedCookie", "no valid kbs-session-id"))
        if b.current_mode() == "deny-attest":
            b.count("refused")
            return self.reply(401, error("AttestationError", "attestation policy denied "
                                         "this evidence (test-kbs deny-attest mode)"))
        try:
            rt = req["runtime-data"]
            nonce = rt["nonce"]
            tee_pubkey = rt["tee-pubkey"]
            te = req["tee-evidence"]
            primary = te["primary_evidence"]
            additional = te["additional_evidence"]
            if not isinstance(additional, str):
                raise ValueError("additional_evidence must be a string")
            check_tee_pubkey(tee_pubkey)
        except (KeyError, TypeError, ValueError) as e:
            return self.reply(401, error("AttestationError", "malformed attestation: %s" % e))
        if nonce != s["nonce"]:
            return self.reply(401, error("AttestationError", "nonce mismatch"))
        digest = hashlib.sha384(jcs({"additional-evidence": additional, "nonce": nonce,
                                     "tee-pubkey": tee_pubkey})).digest()
        if s["tee"] == "snp":
            if b.snp_ark is None:
                return self.reply(401, error("AttestationError", "test-kbs has no "
                                             "--snp-ark to verify snp evidence"))
            if b.current_mode() == "replay" and b.last_snp is not None:
                self.note("replaying the evidence of an earlier session")
                primary = b.last_snp
            try:
                snp_verify(primary, digest, b.snp_ark)
            except (KeyError, TypeError, ValueError) as e:
                self.note("snp evidence refused: %s" % e)
                if "REPORT_DATA" in str(e):
                    b.count("binding-refused")
                return self.reply(401, error("AttestationError",
                                             "snp evidence refused: %s" % e))
            b.last_snp = primary
            tmp = os.path.join(b.dir, "last-snp.json.tmp")
            with open(tmp, "w") as f:
                json.dump({"evidence": primary, "digest": digest.hex()}, f)
            os.replace(tmp, os.path.join(b.dir, "last-snp.json"))
            b.count("snp")
        elif s["tee"] == "sample":
            try:
                if not isinstance(primary, dict) or "svn" not in primary:
                    raise ValueError("sample evidence needs svn")
                rd = base64.b64decode(primary["report_data"], validate=True)
            except (KeyError, TypeError, ValueError) as e:
                return self.reply(401, error("AttestationError", "bad sample evidence: %s" % e))
            if rd != digest:
                self.note("REPORT_DATA mismatch: got %s want %s" % (rd.hex(), digest.hex()))
                b.count("binding-refused")
                return self.reply(401, error("AttestationError",
                                             "REPORT_DATA is different from that in Sample Quote"))
        else:
            return self.reply(401, error("AttestationError", "test-kbs verifies only "
                                         "the sample and snp TEEs"))
        with b.lock:
            s["attested"] = True
            s["tee-pubkey"] = tee_pubkey
        b.count("attest")
        token = "%s.%s.%s" % (b64u(b'{"alg":"none"}'), b64u(json.dumps(
            {"submods": {"cpu0": {"ear.veraison.annotated-evidence": {
                "runtime_data_claims": {"tee-pubkey": tee_pubkey}}}}}).encode()), "")
        self.reply(200, {"token": token}, cookie=sid)

    def do_GET(self):
        b = self.server.broker
        mode = b.current_mode()
        if mode == "slow":
            time.sleep(2)
        parts = self.path.split("/")
        if len(parts) != 7 or parts[:4] != ["", "kbs", "v0", "resource"]:
            return self.reply(404, error("InvalidRequestPath", "no such endpoint"))
        repo, typ, tag = parts[4:]
        if not all(SEGMENT.match(p) for p in (repo, typ, tag)):
            return self.reply(400, error("InvalidRequestPath", "bad resource path"))
        sid, s = self.session()
        if s is None or not s["attested"]:
            return self.reply(401, error("TokenNotFound", "no attested session"))
        if mode == "deny":
            b.count("refused")
            self.note("policy deny %s/%s/%s" % (repo, typ, tag))
            return self.reply(401, error("PolicyDeny", "resource policy denied "
                                         "%s/%s/%s (test-kbs deny mode)" % (repo, typ, tag)))
        path = os.path.join(b.dir, "resources", repo, typ, tag)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return self.reply(404, error("ResourceNotFound", "no resource %s/%s/%s"
                                         % (repo, typ, tag)))
        if mode == "garbage":
            return self.reply(200, raw=b"\x00\x01garbage, not a JWE\xff")
        if mode == "wrong-key":
            data = b.wrong_key
        jwe = make_jwe(s["tee-pubkey"], data)
        if mode == "bad-tag":
            t = bytearray(b64u_dec(jwe["tag"]))
            t[0] ^= 1
            jwe["tag"] = b64u(bytes(t))
        b.count("released")
        self.note("released %s/%s/%s (%d bytes, %s)" % (repo, typ, tag, len(data),
                                                        s["tee-pubkey"]["alg"]))
        self.reply(200, jwe)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    os.makedirs(os.path.join(args.dir, "resources"), exist_ok=True)
    make_tls(args.dir)
    srv = Server(("127.0.0.1", args.port), Handler)
    ark = None
    if args.snp_ark:
        with open(args.snp_ark, "rb") as f:
            ark = f.read()
    srv.broker = Broker(args.dir, args.mode, ark)
    if not args.http:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(args.dir, "server.pem"),
                            os.path.join(args.dir, "server.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, os.path.join(args.dir, "port"))
    sys.stderr.write("test-kbs: listening on %s://127.0.0.1:%d (mode %s)\n"
                     % ("http" if args.http else "https", port, args.mode))
    sys.stderr.flush()
    srv.serve_forever()


def set_key(args):
    repo, typ, tag = args.resource.split("/")
    d = os.path.join(args.dir, "resources", repo, typ)
    os.makedirs(d, exist_ok=True)
    if args.raw_hex is not None:
        data = bytes.fromhex(args.raw_hex)
    else:
        key = bytes.fromhex(args.key_hex)
        data = json.dumps({"version": args.version,
                           "key": base64.b64encode(key).decode()}).encode()
    tmp = os.path.join(d, ".%s.tmp" % tag)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(d, tag))


def self_test(args):
    with open(args.vectors) as f:
        v = json.load(f)
    ok = True
    canon = jcs({"additional-evidence": "", "nonce": v["challenge"]["nonce"],
                 "tee-pubkey": v["tee_pubkey_jwk"]})
    ok &= canon.decode() == v["runtime_data_jcs"]
    ok &= hashlib.sha384(canon).hexdigest() == v["runtime_data_sha384"]
    j = v["jwe"]
    eph = ec.derive_private_key(int(j["kbs_ephemeral_private_key_d_hex"], 16), ec.SECP256R1())
    got = make_jwe(v["tee_pubkey_jwk"], j["plaintext"].encode(), eph=eph,
                   cek=bytes.fromhex(j["cek_hex"]), iv=bytes(range(0xa0, 0xac)))
    ok &= got == j["response_body"]
    # A third implementation: python3-jwcrypto must decrypt what make_jwe makes.
    try:
        from jwcrypto import jwe as jjwe, jwk as jjwk
    except ImportError:
        jjwe = None
        print("self-test: python3-jwcrypto missing, cross-check skipped")
    if jjwe is not None:
        for priv, alg in ((jjwk.JWK.generate(kty="EC", crv="P-256"), "ECDH-ES+A256KW"),
                          (jjwk.JWK.generate(kty="RSA", size=2048), "RSA-OAEP-256")):
            pub = json.loads(priv.export_public())
            pub["alg"] = alg
            tok = jjwe.JWE()
            tok.deserialize(json.dumps(make_jwe(pub, b"cross-check " + alg.encode())), key=priv)
            ok &= tok.payload == b"cross-check " + alg.encode()
    print("self-test: %s" % ("ok" if ok else "MISMATCH"))
    return 0 if ok else 1


def make_rsa_vector(args):
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pn = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "alg": "RSA-OAEP-256",
           "n": b64u(pn.n.to_bytes((pn.n.bit_length() + 7) // 8, "big")),
           "e": b64u(pn.e.to_bytes(3, "big"))}
    plaintext = b'{"version":7,"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}'
    out = {"_note": "generated by tests/kbs/test-kbs.py make-rsa-vector (python3-cryptography); "
                    "test key only",
           "private_key_pem": key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode(),
           "tee_pubkey_jwk": jwk,
           "plaintext": plaintext.decode(),
           "jwe": make_jwe(jwk, plaintext)}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    return 0


def main():
    p = argparse.ArgumentParser(description="test key broker (Trustee KBS RCAR 0.4.0)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--http", action="store_true")
    s.add_argument("--mode", default="normal",
                   choices=["normal", "deny", "deny-attest", "garbage", "bad-tag",
                            "wrong-key", "slow", "replay"])
    s.add_argument("--snp-ark", help="PEM of the ARK that SNP evidence must chain to")
    k = sub.add_parser("set-key")
    k.add_argument("--dir", required=True)
    k.add_argument("--resource", required=True)
    k.add_argument("--version", type=int)
    k.add_argument("--key-hex")
    k.add_argument("--raw-hex")
    i = sub.add_parser("init")
    i.add_argument("--dir", required=True)
    t = sub.add_parser("self-test")
    t.add_argument("vectors")
    v = sub.add_parser("verify-snp")
    v.add_argument("--ark", required=True)
    v.add_argument("evidence")
    v.add_argument("digest")
    r = sub.add_parser("make-rsa-vector")
    r.add_argument("out")
    a = p.parse_args()
    if a.cmd != "set-key":
        import_crypto()
    if a.cmd == "serve":
        return serve(a)
    if a.cmd == "set-key":
        if a.raw_hex is None and (a.version is None or a.key_hex is None):
            p.error("set-key needs --version and --key-hex, or --raw-hex")
        return set_key(a)
    if a.cmd == "init":
        os.makedirs(a.dir, exist_ok=True)
        return make_tls(a.dir)
    if a.cmd == "self-test":
        return self_test(a)
    if a.cmd == "verify-snp":
        with open(a.ark, "rb") as f:
            ark = f.read()
        with open(a.evidence) as f:
            ev = json.load(f)
        try:
            snp_verify(ev, bytes.fromhex(a.digest), ark)
        except (KeyError, TypeError, ValueError) as e:
            print("refused: %s" % e)
            return 1
        print("verified")
        return 0
    return make_rsa_vector(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
