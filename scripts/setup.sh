#!/usr/bin/env bash
# Installs everything (Debian packages included), builds tao in release mode and runs the main job:
# Fashion-MNIST (shipped by Debian) as image folders, a ResNet-10 trained from a TAO spec, its test
# accuracy; then the rest of TAO's flow on it: prune, retrain, ONNX export, INT8 calibration and the
# INT8 model's accuracy; then the speed benchmark. About 12 minutes on 2 cores (training and
# evaluation of the demo: about 4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
tao=.build/release/tao
[ -d data/fashion-mnist/test ] || $tao data fashion-mnist -o data/fashion-mnist
$tao classification train -e specs/fashion_mnist_demo.txt -r results/fashion_mnist_demo
$tao classification evaluate -e specs/fashion_mnist_demo.txt -r results/fashion_mnist_demo
$tao classification prune -m results/fashion_mnist_demo/weights/resnet10_006.tao -pth 0.75 -e specs/fashion_mnist_demo.txt \
     -o results/fashion_mnist_demo_pruned/resnet10_pruned.tao -r results/fashion_mnist_demo_pruned
$tao classification train -e specs/fashion_mnist_demo_retrain.txt -r results/fashion_mnist_demo_retrain
$tao classification evaluate -e specs/fashion_mnist_demo_retrain.txt -r results/fashion_mnist_demo_retrain
$tao classification export -m results/fashion_mnist_demo_retrain/weights/resnet10_005.tao -o results/fashion_mnist_demo.onnx \
     -e specs/fashion_mnist_demo.txt --data_type int8 --cal_image_dir data/fashion-mnist/train --batches 20 --batch_size 16
$tao classification evaluate -e specs/fashion_mnist_demo.txt -r results/fashion_mnist_demo_int8 --engine_file results/fashion_mnist_demo.int8.tao
$tao benchmark --model resnet18 --task train --iters 3
$tao benchmark --model resnet18 --task infer --iters 3
