#!/usr/bin/env bash
# tools/setup.sh: installs the Debian 12 packages vtpmd needs to build, test
# and benchmark, when they are missing. Idempotent; needs root (or sudo).
#   tools/setup.sh            build + test dependencies
#   tools/setup.sh --guest    also what `make check-guest` needs (QEMU, kernel tools)
#   tools/setup.sh --bench    also what `make bench` needs (swtpm)
set -euo pipefail

PKGS=(
	build-essential pkg-config git ca-certificates python3
	libtpms-dev libsodium-dev liblmdb-dev lmdb-utils libseccomp-dev
	libjson-c-dev libtss2-dev tpm2-tools
	tpm2-abrmd libtss2-tcti-tabrmd0 libtss2-tcti-swtpm0 dbus-daemon
	libssl-dev libcurl4-openssl-dev
	python3-cryptography python3-jwcrypto jq
	clang libclang-rt-14-dev
	etcd-server
)
for arg in "$@"; do
	case $arg in
	--guest) PKGS+=(qemu-system-x86 busybox-static cpio kmod xz-utils gzip
		libtss2-tcti-device0 iproute2 libc6-dev) ;;
	--bench) PKGS+=(swtpm swtpm-tools) ;;
	*) echo "usage: $0 [--guest] [--bench]" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#PKGS[@]} packages present"
	exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends --no-upgrade "${missing[@]}"
