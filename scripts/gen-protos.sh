#!/usr/bin/env bash
# Regenerates Sources/TaoSpec/Generated/*.pb.swift from Sources/TaoSpec/Protos/*.proto.
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
echo "generated: $(ls Sources/TaoSpec/Generated)"
