#!/usr/bin/env bash
# tools/check.sh: the test command (README, .ci/run). Installs what is
# missing, builds with warnings as errors, runs every test, then runs them
# all again under AddressSanitizer + UndefinedBehaviorSanitizer. `make
# check-guest` (a real guest kernel under QEMU, a few minutes) runs after
# `make check`; setup.sh --guest installs what it needs. `make check-fleet`
# (three etcd members and three vtpmd on loopback, about two minutes) follows.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --guest
export CI=${CI:-1}
make -j2 all
make check
make check-guest
make check-fleet
make -j2 asan all
make asan check
