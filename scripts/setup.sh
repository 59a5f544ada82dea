#!/usr/bin/env bash
# Installs everything (Debian packages included), builds tao in release mode and runs the main job:
# Fashion-MNIST (shipped by Debian) as image folders, a ResNet-10 trained from a TAO spec, its test
# accuracy, then the speed benchmark. About 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
tao=.build/release/tao
[ -d data/fashion-mnist/test ] || $tao data fashion-mnist -o data/fashion-mnist
$tao classification train -e specs/fashion_mnist_demo.txt -r results/fashion_mnist_demo
$tao classification evaluate -e specs/fashion_mnist_demo.txt -r results/fashion_mnist_demo
$tao benchmark --model resnet18 --task train --iters 3
$tao benchmark --model resnet18 --task infer --iters 3
