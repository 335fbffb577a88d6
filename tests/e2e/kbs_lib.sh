# tests/e2e/kbs_lib.sh: the test key broker (tests/kbs/test-kbs.py) for the
# e2e scripts that need one. Source it after lib.sh; sets K, KPY, BROKER.
KPY=${KBS_PYTHON:-/usr/bin/python3}	# Debian's, with python3-cryptography
BROKER=$TOP/tests/kbs/test-kbs.py
K=$T/kbs
KBS_PID=
TEST_ARK=$TOP/attestation/testchain/ark.pem

kbs_have_crypto() {
	"$KPY" -c 'import cryptography' 2>/dev/null && return 0
	echo "$T_NAME: $KPY has no python3-cryptography (tools/setup.sh installs it)"
	return 1
}
# start_kbs [serve args]: the broker on 127.0.0.1; sets KBS_PORT
start_kbs() {
	mkdir -p "$K"
	rm -f "$K/port"
	"$KPY" "$BROKER" serve --dir "$K" "$@" >>"$T/kbs.log" 2>&1 &
	KBS_PID=$!
	T_PIDS+=($KBS_PID)
	local i
	for i in $(seq 200); do
		[ -s "$K/port" ] && break
		sleep 0.05
	done
	KBS_PORT=$(cat "$K/port" 2>/dev/null)
	[ -n "$KBS_PORT" ]
}
kbs_mode() { echo "$1" >"$K/mode"; }
# kbs_key RESOURCE VERSION HEXKEY: publish {"version":N,"key":b64} at RESOURCE
kbs_key() { "$KPY" "$BROKER" set-key --dir "$K" --resource "$1" --version "$2" --key-hex "$3"; }
kbs_stat() { jq -r ".\"$1\" // 0" "$K/stats.json" 2>/dev/null || echo 0; }
# kbs_url_args RESOURCE: the vtpmd options for this broker and root-key resource
kbs_url_args() {
	KBS_ARGS=(--key-provider "kbs:https://127.0.0.1:$KBS_PORT" --key-resource "$1"
		--kbs-ca-file "$K/ca.pem")
}
# wait_admin_keys ADMIN_SOCK PREFIX [tries of 100 ms]: status "keys" starts with PREFIX
wait_admin_keys() {
	local i s
	for i in $(seq "${3:-150}"); do
		s=$("$B/vtpmctl" --admin "$1" --json status 2>/dev/null | jq -r '.status.keys // empty')
		case $s in "$2"*) return 0 ;; esac
		sleep 0.1
	done
	echo "    (keys: '$s', want '$2...')"
	return 1
}
