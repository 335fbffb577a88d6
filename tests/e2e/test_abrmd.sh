#!/usr/bin/env bash
# test_abrmd.sh: tpm2-abrmd (the TSS access broker) on top of the vtpm TCTI
# plugin, serving tpm2-tools: tpm2-abrmd --tcti=vtpm:PATH.
#
# tpm2-abrmd needs a D-Bus bus. As root in a sandbox there is no session
# bus and the system bus policy only lets the "tss" user own its name, so
# the test starts a private dbus-daemon (a session bus on a unix socket in
# its scratch directory, with a policy that allows everything on it) and
# runs tpm2-abrmd --session --allow-root with its own bus name; clients use
# -T tabrmd:bus_type=session,bus_name=... with DBUS_SESSION_BUS_ADDRESS.
. "$(dirname "$0")/lib.sh"
t_init abrmd
BUS_NAME=org.vtpmd.test.Tabrmd$$

for tool in tpm2-abrmd dbus-daemon; do
	if ! command -v $tool >/dev/null; then
		fail "$tool not installed (tools/setup.sh)"
		t_done
		exit
	fi
done
if [ ! -e /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0 ] &&
	! ldconfig -p | grep -q libtss2-tcti-tabrmd.so.0; then
	fail "libtss2-tcti-tabrmd.so.0 not installed (tools/setup.sh)"
	t_done
	exit
fi

cat >"$T/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$T/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile >"$T/dbus.log" 2>&1 &
T_PIDS+=($!)
check "private dbus-daemon" wait_for_socket "$T/bus"
export DBUS_SESSION_BUS_ADDRESS=unix:path=$T/bus

start_vtpmd || { fail "vtpmd did not start"; t_done; exit; }
check "vtpm-guest (local socket)" start_guest g1 c3 01
LD_PRELOAD=$TPM_PRELOAD tpm2-abrmd --session --allow-root --dbus-name="$BUS_NAME" \
	--tcti="vtpm:$T/g1.sock" >"$T/abrmd.log" 2>&1 &
T_PIDS+=($!)
ABRMD=$!

ab() { local tool=$1; shift; LD_PRELOAD=$TPM_PRELOAD "tpm2_$tool" -T "tabrmd:bus_type=session,bus_name=$BUS_NAME" "$@"; }
ok=
for i in $(seq 100); do
	R=$(ab getrandom --hex 8 2>"$T/err") && [ ${#R} -eq 16 ] && { ok=1; break; }
	kill -0 $ABRMD 2>/dev/null || break
	sleep 0.1
done
check_eq "tpm2-abrmd --tcti=vtpm:PATH serves tpm2_getrandom" "$ok" 1
check "tpm2_createprimary through the broker" eval 'ab createprimary -C o -G ecc -c "$T/p.ctx" >/dev/null 2>"$T/err"'
check "tpm2_pcrextend 16 through the broker" ab pcrextend "16:sha256=$(hexn 07 32)"
P=$(ab pcrread sha256:16 2>/dev/null | awk '/16:/ {print $2}')
check_eq "PCR 16 as read through the broker equals the local socket's" "$P" "$(pcr16 g1)"
check "tpm2_nvdefine through the broker" eval 'ab nvdefine -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" $NV_COUNTER >/dev/null'
check "tpm2_nvincrement through the broker" ab nvincrement -C o $NV_COUNTER
check_eq "tpm2_nvread through the broker: 1" \
	"$(ab nvread -C o $NV_COUNTER 2>/dev/null | od -An -tx1 | tr -d ' \n')" 0000000000000001
# two clients at once: the broker multiplexes them onto the one TCTI context
ab getrandom --hex 8 >"$T/c1" 2>&1 &
C1=$!
ab getrandom --hex 8 >"$T/c2" 2>&1 &
C2=$!
wait $C1 $C2
check_eq "two concurrent clients both served" "$(cat "$T/c1" "$T/c2" | tr -d '\n' | wc -c)" 32
check "tpm2-abrmd still running" kill -0 $ABRMD
t_done
