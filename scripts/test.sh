#!/usr/bin/env bash
# Installs what the tests need, builds and runs the whole test suite (XCTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
log=$(mktemp)
status=0
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log" || status=$?
# One plain closing line: "N passed, N failed".
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -1 || true)
total=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
rm -f "$log"
if [ -z "$summary" ]; then echo "no test summary found"; exit 1; fi
echo "$((total - failed)) passed, $failed failed"
exit $status
