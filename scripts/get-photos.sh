#!/usr/bin/env bash
# Background photographs for the detection demo (and text.png for the ONNX import tests): the CC0 and public-domain sample images that
# scikit-image's wheel ships (licenses in skimage/data/_fetchers.py), unpacked from the wheel
# without installing it or its dependencies. Writes data/photos/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/photos
files="astronaut.png camera.png brick.png grass.png gravel.png chelsea.png coffee.png rocket.jpg hubble_deep_field.jpg text.png"
if [ -f "$out/text.png" ]; then exit 0; fi
mkdir -p "$out" data/wheels
py=.venv/bin/python; [ -x "$py" ] || py=python3
[ -n "$(ls data/wheels/scikit_image-0.24.0-*.whl 2>/dev/null)" ] || "$py" -m pip download -q scikit-image==0.24.0 --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 -d data/wheels
wheel=$(ls data/wheels/scikit_image-0.24.0-*.whl | head -1)
for f in $files; do "$py" -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('skimage/data/' + sys.argv[2]))" "$wheel" "$f" > "$out/$f.tmp" && mv "$out/$f.tmp" "$out/$f"; done
cat > "$out/LICENSES.txt" <<'TXT'
From scikit-image 0.24.0 (skimage/data; licenses as its _fetchers.py states them):
astronaut.png          NASA, public domain
camera.png             CC0, Lav Varshney
brick.png              CC0 (CC0Textures, Bricks25)
grass.png              CC0 (public domain)
gravel.png             CC0 (CC0Textures, Gravel04)
chelsea.png            CC0, Stefan van der Walt
coffee.png             CC0, Rachel Michetti
rocket.jpg             SpaceX, public domain
hubble_deep_field.jpg  NASA, public domain
text.png               public domain (Wikipedia, File:Corner.png; "no known copyright restrictions")
TXT
echo "wrote $(echo $files | wc -w) photographs to $out"
