#!/usr/bin/env bash
# After scripts/setup.sh: the rest of TAO's DetectNet_v2 flow on the detection demo — prune the
# trained model, retrain the pruned one, evaluate both on the test scenes, export ONNX and INT8
# (calibrated on training scenes) and evaluate the INT8 engine and the ONNX file. About 9 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
tao=.build/release/tao
model=results/detection_demo/weights/resnet18_011.tao
test_spec=results/detection_demo/test_spec.txt
$tao detectnet_v2 prune -m $model -o results/detection_demo_pruned/resnet18_pruned.tao -pth ${PTH:-0.4} -eq union \
     -e specs/demo_detectnet_v2.txt -r results/detection_demo_pruned
sed -e 's|results/detection_demo_pretrain/weights/resnet18_004.tao|results/detection_demo_pruned/resnet18_pruned.tao|' \
    specs/demo_detectnet_v2.txt > results/detection_demo_pruned/retrain_spec.txt
$tao detectnet_v2 train -e results/detection_demo_pruned/retrain_spec.txt -r results/detection_demo_retrain
retrained=results/detection_demo_retrain/weights/resnet18_011.tao
$tao detectnet_v2 evaluate -e $test_spec -m $retrained -r results/detection_demo_retrain_test
$tao detectnet_v2 export -m $model -o results/detection_demo.onnx -e specs/demo_detectnet_v2.txt --data_type int8 \
     --cal_image_dir data/detection_demo/train/images --batches 10 --batch_size 8 --fp32_layers auto
$tao detectnet_v2 evaluate -e $test_spec -m results/detection_demo.int8.tao -r results/detection_demo_int8_test
$tao detectnet_v2 evaluate -e $test_spec -m results/detection_demo.onnx -r results/detection_demo_onnx_test
