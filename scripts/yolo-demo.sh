#!/usr/bin/env bash
# After scripts/setup.sh (which makes the detection demo's scenes): TAO's YOLO flow on them with
# YOLOv4-tiny — kmeans anchors, training (about 19 minutes on 2 cores), evaluation on the test scenes,
# inference, ONNX export (decoding and NonMaxSuppression appended) checked against onnxruntime,
# INT8 (calibrated on training scenes), then prune and retrain the pruned model (another ~15 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
tao=.build/release/tao
spec=specs/demo_yolo_v4_tiny.txt
run=results/yolo_v4_tiny_demo
model=$run/weights/cspdarknet_tiny_028.tao
$tao yolo_v4_tiny kmeans -l data/detection_demo/train/labels -i data/detection_demo/train/images -x 160 -y 96 -n 6
$tao yolo_v4_tiny train -e $spec -r $run
# The test scenes as the validation data, as setup.sh does for DetectNet_v2.
sed 's|validation_fold: 0|validation_data_sources: { tfrecords_path: "data/detection_demo/tfrecords/test*" image_directory_path: "data/detection_demo/test" }|' \
    $spec > $run/test_spec.txt
$tao yolo_v4_tiny evaluate -e $run/test_spec.txt -m $model -r ${run}_test
$tao yolo_v4_tiny inference -e $spec -m $model -i data/detection_demo/test/images \
     -o ${run}_inference/images_annotated -l ${run}_inference/labels -t 0.3
$tao yolo_v4_tiny export -m $model -o $run.onnx
.venv/bin/python scripts/yolo_onnx_check.py $run.onnx data/detection_demo/test/images ${run}_inference/labels 0.3
$tao yolo_v4_tiny export -m $model -o $run.onnx -e $spec --data_type int8 \
     --cal_image_dir data/detection_demo/train/images --batches 10 --batch_size 8 --fp32_layers auto
$tao yolo_v4_tiny evaluate -e $run/test_spec.txt -m $run.int8.tao -r ${run}_int8_test
$tao yolo_v4_tiny prune -m $model -o ${run}_pruned/pruned.tao -pth ${PTH:-0.55} -eq union -e $spec -r ${run}_pruned
sed -e 's|  checkpoint_interval: 1|  checkpoint_interval: 1\n  pruned_model_path: "'${run}_pruned/pruned.tao'"|' $spec > ${run}_pruned/retrain_spec.txt
$tao yolo_v4_tiny train -e ${run}_pruned/retrain_spec.txt -r ${run}_retrain
$tao yolo_v4_tiny evaluate -e $run/test_spec.txt -m ${run}_retrain/weights/cspdarknet_tiny_028.tao -r ${run}_retrain_test
