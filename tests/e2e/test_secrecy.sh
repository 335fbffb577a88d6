#!/usr/bin/env bash
# test_secrecy.sh: TPM secrets never reach the disk in clear (issue 2: "a
# 32-byte random value written to NV by the test appears in no file under the
# state directory"). Searched byte for byte and as hex, in every file, while
# vtpmd runs and after it stopped (when volatile state was saved too).
source "$(dirname "$0")/lib.sh"
t_init secrecy

NV_SECRET=0x1500020
head -c 32 /dev/urandom >"$T/secret.bin"

# search DIR FILE: prints every file under DIR holding FILE's bytes, or their
# hex (lower or upper case), anywhere; exit 0 if none does
search() {
	$PY - "$1" "$2" <<'EOF'
import os, sys
root, needle = sys.argv[1], open(sys.argv[2], "rb").read()
forms = [needle, needle.hex().encode(), needle.hex().upper().encode()]
found, files = [], 0
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        if not os.path.isfile(p) or os.path.islink(p):
            continue
        files += 1
        data = open(p, "rb").read()
        found += [p for f in forms if f in data]
print("searched %d files" % files)
for p in found:
    print("FOUND in", p)
sys.exit(1 if found or files == 0 else 0)
EOF
}

start_vtpmd
start_guest g 5e 01
check "define a 32-byte NV index" quiet tpm g nvdefine -C o -s 32 -a "ownerread|ownerwrite" $NV_SECRET
check "write the secret from a file" tpm g nvwrite -C o -i "$T/secret.bin" $NV_SECRET
tpm g nvread -C o -s 32 $NV_SECRET >"$T/readback.bin" 2>/dev/null
check "the TPM returns the secret (it really is stored)" cmp -s "$T/secret.bin" "$T/readback.bin"

# The search finds what is there: the instance name is stored in clear, and
# the secret (as hex) where the test puts it.
printf '%s' "$(inst_name 5e)" >"$T/name.txt"
check "control: the search finds the instance name in the store" quiet fails_ search "$T/state" "$T/name.txt"
mkdir "$T/control" && od -An -tx1 "$T/secret.bin" | tr -d ' \n' >"$T/control/hex.txt"
check "control: the search finds the secret's hex" quiet fails_ search "$T/control" "$T/secret.bin"

check "secret in no file of the state directory (vtpmd running)" quiet search "$T/state" "$T/secret.bin"

stop_guest g
check "vtpmd stops cleanly (saves volatile state)" stop_vtpmd
check "secret in no file of the state directory (vtpmd stopped)" quiet search "$T/state" "$T/secret.bin"
mkdir "$T/logs" && cp "$T"/*.log "$T/logs/"
check "secret in no log" quiet search "$T/logs" "$T/secret.bin"

check_eq "dev root key file is mode 0600" "$(stat -c %a "$T/state/dev-root.key")" 600
check_eq "dev root key file holds 32 bytes" "$(stat -c %s "$T/state/dev-root.key")" 32
check_eq "state directory is mode 0700" "$(stat -c %a "$T/state")" 700
# The root key itself is not in the store either.
check "root key bytes in no other file of the state directory" \
	$PY -c '
import os, sys
key = open(sys.argv[1], "rb").read()
root = os.path.dirname(sys.argv[1])
bad = [n for n in os.listdir(root) if n != "dev-root.key" and
       os.path.isfile(os.path.join(root, n)) and
       (key in open(os.path.join(root, n), "rb").read() or
        key.hex().encode() in open(os.path.join(root, n), "rb").read())]
print("root key found in", bad) if bad else None
sys.exit(1 if bad else 0)' "$T/state/dev-root.key"

# And after a restart the secret is still there, so it was stored (sealed).
start_vtpmd
check_eq "the volatile state was saved at the stop (and searched above)" \
	"$(inst_field "$(inst_name 5e)" has_volatile_state)" true
start_guest g 5e 01
tpm g nvread -C o -s 32 $NV_SECRET >"$T/readback2.bin" 2>/dev/null
check "the secret survives the restart (stored sealed, not lost)" cmp -s "$T/secret.bin" "$T/readback2.bin"
stop_guest g
stop_vtpmd
t_done
