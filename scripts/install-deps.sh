#!/usr/bin/env bash
# Installs the Debian packages tao-swift builds and runs with (skips apt when all are present).
# The Swift 6 toolchain itself is expected on PATH (/opt/swift on our machines).
set -euo pipefail
packages=(libdnnl-dev zlib1g-dev libturbojpeg0-dev libspng-dev dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v swift >/dev/null || { echo "error: no 'swift' on PATH; install the Swift 6 toolchain (e.g. to /opt/swift) first" >&2; exit 1; }
