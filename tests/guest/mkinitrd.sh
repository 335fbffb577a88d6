#!/usr/bin/env bash
# tests/guest/mkinitrd.sh: builds the check-guest initramfs (gzip'd newc cpio):
# static busybox, /init (tests/guest/init.sh), the kernel modules the guest
# needs (dependencies first, from depmod's modules.dep), vtpm-guest, the raw
# test client, tpm2-tools and the tcti-device plugin it dlopen()s, with every
# shared library ldd names, at the paths the binaries expect, and this
# project's TCTI plugin (libtss2-tcti-vtpm.so.0).
#
# usage: mkinitrd.sh OUT.cpio.gz KERNEL_ROOT KVER VTPM_GUEST RAWTPM INIT TCTI_VTPM_SO
set -euo pipefail
OUT=$1 KROOT=$2 KVER=$3 GUEST=$4 RAWTPM=$5 INIT=$6 TCTI_VTPM=$7
MODULES="virtio_net virtio_pci virtio-rng tpm_vtpm_proxy"
TOOLS="createprimary pcrextend pcrread nvdefine nvincrement nvread getrandom getcap startup"

R=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-initrd.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,usr/bin,etc,lib/modules,proc,sys,dev,tmp,run}

cp /bin/busybox "$R/bin/busybox"
install -m 0755 "$INIT" "$R/init"
install -m 0755 "$GUEST" "$R/usr/bin/vtpm-guest"
install -m 0755 "$RAWTPM" "$R/usr/bin/rawtpm"
cp /usr/bin/tpm2 "$R/usr/bin/tpm2"
for t in $TOOLS; do ln -s tpm2 "$R/usr/bin/tpm2_$t"; done

# Modules in load order: each one's dependencies (modules.dep) before it.
DEP="$KROOT/lib/modules/$KVER/modules.dep"
declare -A seen=()
order=()
add_mod() {	# path relative to lib/modules/KVER
	local m=$1 d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	for d in $(awk -v m="$m:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$DEP"); do
		add_mod "$d"
	done
	order+=("$m")
}
for name in $MODULES; do
	path=$(awk -F: -v n="/$name.ko" 'index($1, n) && substr($1, length($1) - length(n) + 1) == n { print $1; exit }' "$DEP")
	[ -n "$path" ] || { echo "mkinitrd: module $name not in $DEP" >&2; exit 1; }
	add_mod "$path"
done
: >"$R/etc/modules.order"
for m in "${order[@]}"; do
	cp "$KROOT/lib/modules/$KVER/$m" "$R/lib/modules/"
	basename "$m" >>"$R/etc/modules.order"
done

# Shared libraries, at their own paths (the dynamic loader included).
copy_libs() {
	local f lib
	for f in "$@"; do
		for lib in $(ldd "$f" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
			[ -e "$R$lib" ] && continue
			mkdir -p "$R$(dirname "$lib")"
			cp -L "$lib" "$R$lib"
		done
	done
}
TCTI=/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0
mkdir -p "$R$(dirname "$TCTI")"
cp -L "$TCTI" "$R$TCTI"
# this project's TCTI plugin, where tctildr's dlopen() finds it
cp -L "$TCTI_VTPM" "$R/usr/lib/x86_64-linux-gnu/libtss2-tcti-vtpm.so.0"
copy_libs "$GUEST" /usr/bin/tpm2 "$TCTI"

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitrd: $OUT, $(du -h "$OUT" | cut -f1), modules: $(tr '\n' ' ' <"$R/etc/modules.order")"
