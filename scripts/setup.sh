#!/usr/bin/env bash
# Installs everything (Debian packages included), builds tao in release mode and runs the main job:
# a short training run on the bundled Fashion-MNIST with its test accuracy, then the speed benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
.build/release/tao demo
.build/release/tao benchmark --model resnet18 --task train --iters 3
.build/release/tao benchmark --model resnet18 --task infer --iters 3
