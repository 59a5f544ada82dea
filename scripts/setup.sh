#!/usr/bin/env bash
# Installs everything (Debian packages included), builds tao in release mode and runs the main job:
# Fashion-MNIST (shipped by Debian) as image folders, a ResNet-10 trained from a TAO spec, its test
# accuracy; then the rest of TAO's flow on it: prune, retrain, ONNX export, INT8 calibration and the
# INT8 model's accuracy; then the detection demo: scenes of Fashion-MNIST objects on photographs,
# converted to TFRecords, DetectNet_v2 ResNet-18 trained (about 14 minutes on 2 cores), its mAP on
# the test scenes, an annotated test image; UNet semantic segmentation on the same scenes' masks;
# then the speed benchmark. About 42 minutes on 2 cores.
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
# Detection: DetectNet_v2 on scenes made here (scikit-image's CC0 photographs, Fashion-MNIST objects).
bash scripts/get-photos.sh
[ -d data/detection_demo/test/masks ] || $tao data detection-scenes -o data/detection_demo --crops-train 6000 --crops-val 600 \
    --photos data/photos/*.png data/photos/*.jpg
$tao detectnet_v2 dataset_convert -d specs/demo_detection_convert.txt -o data/detection_demo/tfrecords/train
$tao detectnet_v2 dataset_convert -d specs/demo_detection_convert_test.txt -o data/detection_demo/tfrecords/test
# TAO's flow: a classification model (ResNet-18 on single-object crops) as the detector's pretrained weights.
$tao classification train -e specs/demo_detection_pretrain.txt -r results/detection_demo_pretrain
$tao detectnet_v2 train -e specs/demo_detectnet_v2.txt -r results/detection_demo
# The same spec validating on the test scenes (objects from Fashion-MNIST's test set), for evaluate.
sed 's|validation_fold: 0|validation_data_source: { tfrecords_path: "data/detection_demo/tfrecords/test*" image_directory_path: "data/detection_demo/test" }|' \
    specs/demo_detectnet_v2.txt > results/detection_demo/test_spec.txt
$tao detectnet_v2 evaluate -e results/detection_demo/test_spec.txt -m results/detection_demo/weights/resnet18_011.tao -r results/detection_demo_test
$tao detectnet_v2 inference -e specs/demo_detectnet_v2_inference.txt -i data/detection_demo/test/images/00000.png -o results/detection_demo_inference
echo "annotated test image: results/detection_demo_inference/images_annotated/00000.png"
# Semantic segmentation: TAO's UNet (ResNet-18 encoder from the same pretrained classifier) on the
# same scenes' class masks (about 14 minutes); mean IoU on the test scenes, masks and overlays of them.
$tao unet train -e specs/demo_unet.txt -r results/unet_demo
$tao unet evaluate -e specs/demo_unet.txt -m results/unet_demo/weights/resnet18_007.tao -o results/unet_demo_test
$tao unet inference -e specs/demo_unet.txt -m results/unet_demo/weights/resnet18_007.tao -o results/unet_demo_inference
echo "segmented test scene: results/unet_demo_inference/vis_overlay_tlt/00000.png"
echo "each run's summary (metrics, plots, validation images, next commands): results/*/summary.md; TensorBoard: tensorboard --logdir results"
$tao benchmark --model resnet18 --task train --iters 3
$tao benchmark --model resnet18 --task infer --iters 3
