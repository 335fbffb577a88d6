#!/usr/bin/env bash
# tools/demo.sh: sets up, builds and shows vtpmd on its embedded default:
# a local unix socket, simulated attestation, a development key file.
# Two simulated guests use their own persistent vTPMs through tpm2-tools;
# then everything restarts, the NV counters are still there and the PCRs
# were reset by the guests' new launches. Everything stops cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
make -s -j2 all
B=$PWD/build
export LD_LIBRARY_PATH=$B TSS2_LOG=all+none
D=$(mktemp -d "${TMPDIR:-/tmp}/vtpmd-demo.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
hexn() { printf "$1%.0s" $(seq "$2"); }
waitsock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

start_vtpmd() {
	"$B/vtpmd" --dev --state-dir "$D/state" --listen "unix:$D/vtpmd.sock" \
		--admin "unix:$D/admin.sock" 2>>"$D/vtpmd.log" &
	VTPMD=$!
	waitsock "$D/vtpmd.sock"
}
start_guest() {	# name host-data-byte launch-id-byte
	"$B/vtpm-guest" --server "unix:$D/vtpmd.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$2" 32)" \
		--sim-launch-id "$(hexn "$3" 32)" --socket "$D/$1.sock" 2>>"$D/$1.log" &
	eval "G_$1=$!"
	PIDS+=($!)
	waitsock "$D/$1.sock"
}
tpm() { local g=$1 t=$2; shift 2; "tpm2_$t" -T "vtpm:$D/$g.sock" "$@"; }
counter() { tpm "$1" nvread -C o 0x1500016 2>/dev/null | od -An -tu8 --endian=big | tr -d ' '; }

say "Scratch folder: $D"
say "Starting vtpmd (--dev: simulated attestation, local key file, auto-enrolment)"
start_vtpmd
say "Two guests attach, each proving itself with (simulated) evidence bound to its Noise handshake"
start_guest alice aa 01
start_guest bob bb 01
"$B/vtpmctl" --admin "$D/admin.sock" list

for g in alice bob; do
	say "$g: tpm2_getrandom, an NV counter, PCR 16"
	tpm $g getrandom --hex 16; echo
	tpm $g nvdefine -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" 0x1500016 >/dev/null
	n=3; [ $g = bob ] && n=5
	for _ in $(seq $n); do tpm $g nvincrement -C o 0x1500016; done
	echo "$g's NV counter: $(counter $g)"
	tpm $g pcrextend "16:sha256=$(hexn 01 32)"
	tpm $g pcrread sha256:16
done

say "Restarting everything: vtpmd stops cleanly (saving each TPM), the guests reboot (new launch ids)"
kill -TERM "$G_alice" "$G_bob"; wait "$G_alice" "$G_bob" 2>/dev/null || true
kill -TERM "$VTPMD"; wait "$VTPMD"
start_vtpmd
start_guest alice aa 02
start_guest bob bb 02
for g in alice bob; do
	say "$g after the restart: the NV counter survived, PCR 16 was reset by the new launch"
	echo "$g's NV counter: $(counter $g)"
	tpm $g pcrread sha256:16
done
"$B/vtpmctl" --admin "$D/admin.sock" list

say "Stopping cleanly"
kill -TERM "$G_alice" "$G_bob"; wait "$G_alice" "$G_bob" 2>/dev/null || true
kill -TERM "$VTPMD"; wait "$VTPMD"
echo "vtpmd stopped (exit 0). Logs: $D/*.log"
