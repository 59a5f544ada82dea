#!/usr/bin/env bash
# Regenerates Sources/TaoSpec/Generated/*.pb.swift from Sources/TaoSpec/Protos/*.proto,
# Sources/TaoData/Generated/example.pb.swift from TensorFlow's tf.train.Example schema,
# Sources/TaoReport/Generated/tensorboard.pb.swift from TensorBoard's event-file schema, and
# Sources/TaoONNX/Generated/onnx.pb.swift from ONNX's own schema, which the `onnx` wheel on PyPI
# ships (onnx/onnx.proto, Apache-2.0); the copy used is kept in Sources/TaoONNX/Protos.
# Needs protoc (Debian: protobuf-compiler); builds protoc-gen-swift from the swift-protobuf
# checkout SwiftPM resolved for this package. The generated files are committed: builds and CI
# never run this.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler; }
swift package resolve
plugin_dir=.build/checkouts/swift-protobuf
swift build -c release --package-path "$plugin_dir" --product protoc-gen-swift --scratch-path .build-protoc-gen-swift
protoc --plugin=protoc-gen-swift=.build-protoc-gen-swift/release/protoc-gen-swift \
       --swift_opt=Visibility=Public --swift_out=Sources/TaoSpec/Generated \
       -I Sources/TaoSpec/Protos Sources/TaoSpec/Protos/*.proto
protoc --plugin=protoc-gen-swift=.build-protoc-gen-swift/release/protoc-gen-swift \
       --swift_opt=Visibility=Public --swift_out=Sources/TaoData/Generated \
       -I Sources/TaoData/Protos Sources/TaoData/Protos/example.proto
protoc --plugin=protoc-gen-swift=.build-protoc-gen-swift/release/protoc-gen-swift \
       --swift_opt=Visibility=Public --swift_out=Sources/TaoReport/Generated \
       -I Sources/TaoReport/Protos Sources/TaoReport/Protos/tensorboard.proto
ONNX_VERSION=1.17.0
if [ ! -f Sources/TaoONNX/Protos/onnx.proto ]; then
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "onnx==$ONNX_VERSION"
    python3 -c "import zipfile,glob,sys; z=zipfile.ZipFile(glob.glob(sys.argv[1]+'/onnx-*.whl')[0]); open('Sources/TaoONNX/Protos/onnx.proto','wb').write(z.read('onnx/onnx.proto'))" "$tmp"
    rm -rf "$tmp"
fi
protoc --plugin=protoc-gen-swift=.build-protoc-gen-swift/release/protoc-gen-swift \
       --swift_opt=Visibility=Public --swift_out=Sources/TaoONNX/Generated \
       -I Sources/TaoONNX/Protos Sources/TaoONNX/Protos/onnx.proto
echo "generated: $(ls Sources/TaoSpec/Generated Sources/TaoONNX/Generated Sources/TaoData/Generated Sources/TaoReport/Generated)"
