#!/usr/bin/env bash
# tools/check.sh: the test command (README, .ci/run). Installs what is
# missing, builds with warnings as errors, runs every test, then runs them
# all again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CI=${CI:-1}
make -j2 all
make check
make -j2 asan all
make asan check
