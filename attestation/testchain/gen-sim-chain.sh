#!/bin/sh
# gen-sim-chain.sh: generates the PUBLIC TEST certificate chain that the
# `sim` attestation backend signs with: a self-signed RSA-4096 "ARK", an
# RSA-4096 "ASK" it signs, and two EC P-384 "VCEK"s the ASK signs (one with
# the Milan/Genoa TCB layout and a 64-byte hwID as a DER OCTET STRING, one
# with the Turin layout, fmcSPL and a raw 8-byte hwID), every certificate
# signature RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 like AMD's.
#
# Run it ONCE; the output is committed. Re-running it makes a new test ARK,
# which changes its fingerprint (harmless: the fingerprint is computed from
# the embedded PEM, never hard-coded) and invalidates recorded evidence.
#
# usage: attestation/testchain/gen-sim-chain.sh [OUTDIR]   (default: its own folder)
# These keys are public. Nothing signed by them proves anything.
set -eu
OUT=${1:-$(dirname "$0")}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PSS="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384"
DAYS=27000	# about 74 years: the chain must not expire under the tests
SUBJ="/OU=TEST ONLY - NOT AMD/C=XX/L=Nowhere/ST=XX/O=vtpmd public test keys"

# The test chip: CHIP_ID = SHA-512("vtpmd TEST chip"); Turin: 8 bytes.
CHIP=$(printf 'vtpmd TEST chip' | openssl dgst -sha512 -r | cut -c1-128)
CHIP8=$(printf 'vtpmd TEST chip turin' | openssl dgst -sha512 -r | cut -c1-16)

cat >"$TMP/ext.cnf" <<CNF
[ark]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ask]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[vcek]
1.3.6.1.4.1.3704.1.1 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.2 = ASN1:IA5STRING:vtpmd-TEST
1.3.6.1.4.1.3704.1.3.1 = ASN1:INTEGER:9
1.3.6.1.4.1.3704.1.3.2 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.4 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.5 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.6 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.7 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.3 = ASN1:INTEGER:23
1.3.6.1.4.1.3704.1.3.8 = ASN1:INTEGER:212
1.3.6.1.4.1.3704.1.4 = ASN1:FORMAT:HEX,OCTETSTRING:$CHIP
[vcek_turin]
1.3.6.1.4.1.3704.1.1 = ASN1:INTEGER:1
1.3.6.1.4.1.3704.1.2 = ASN1:IA5STRING:vtpmd-TEST-Turin
1.3.6.1.4.1.3704.1.3.1 = ASN1:INTEGER:2
1.3.6.1.4.1.3704.1.3.2 = ASN1:INTEGER:3
1.3.6.1.4.1.3704.1.3.3 = ASN1:INTEGER:4
1.3.6.1.4.1.3704.1.3.4 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.5 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.6 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.7 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.8 = ASN1:INTEGER:90
1.3.6.1.4.1.3704.1.3.9 = ASN1:INTEGER:1
1.3.6.1.4.1.3704.1.4 = DER:$CHIP8
CNF

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$OUT/ark.key"
openssl req -new -key "$OUT/ark.key" -subj "$SUBJ/CN=ARK-vtpmd-TEST" -out "$TMP/ark.csr"
openssl x509 -req -in "$TMP/ark.csr" -signkey "$OUT/ark.key" \
	-sha384 $PSS -days $DAYS -set_serial 1 -extfile "$TMP/ext.cnf" -extensions ark \
	-out "$OUT/ark.pem"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$OUT/ask.key"
openssl req -new -key "$OUT/ask.key" -subj "$SUBJ/CN=SEV-vtpmd-TEST" -out "$TMP/ask.csr"
openssl x509 -req -in "$TMP/ask.csr" -CA "$OUT/ark.pem" -CAkey "$OUT/ark.key" \
	-sha384 $PSS -days $DAYS -set_serial 2 -extfile "$TMP/ext.cnf" -extensions ask \
	-out "$OUT/ask.pem"

for v in vcek vcek_turin; do
	f=$(echo $v | tr _ -)
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$OUT/$f.key"
	openssl req -new -key "$OUT/$f.key" -subj "$SUBJ/CN=SEV-VCEK" -out "$TMP/$f.csr"
	openssl x509 -req -in "$TMP/$f.csr" -CA "$OUT/ask.pem" -CAkey "$OUT/ask.key" \
		-sha384 $PSS -days $DAYS -set_serial 3 -extfile "$TMP/ext.cnf" -extensions $v \
		-out "$OUT/$f.pem"
done
openssl verify -x509_strict -CAfile "$OUT/ark.pem" -untrusted "$OUT/ask.pem" \
	"$OUT/vcek.pem" "$OUT/vcek-turin.pem"
printf 'ARK sha256 fingerprint: '
openssl x509 -in "$OUT/ark.pem" -outform der | openssl dgst -sha256 -r | cut -c1-64
