#!/usr/bin/env bash
# libFuzzer targets for the three readers of untrusted files: the spec parser (TAO's protobuf text
# format into every spec type), the KITTI label reader and the TFRecord/tf.train.Example reader.
#   bash scripts/fuzz.sh [spec|kitti|tfrecord|all] [SECONDS]      (default: all, 600 s each)
# Builds each target with -sanitize=fuzzer,address (the modules it needs compiled here with the same
# instrumentation, SwiftProtobuf included), runs it on its seed corpus (Fuzz/<target>/corpus, kept in
# the repository; new inputs go to .build-fuzz/corpus/<target>), and prints libFuzzer's summary.
# A crash, leak or hang (-timeout=10 s per input) stops the run with the input that caused it.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}; seconds=${2:-600}
out=.build-fuzz; mkdir -p "$out"
[ -d .build/checkouts/swift-protobuf ] || swift package resolve
flags=(-sanitize=fuzzer,address -parse-as-library -O -g -package-name tao_fuzz -I "$out" -L "$out")
module() {   # module NAME SOURCES... : a static library and its .swiftmodule in $out
    local name=$1; shift
    [ "$out/lib$name.a" -nt Package.swift ] && [ -z "$(find "$@" -newer "$out/lib$name.a" 2>/dev/null | head -1)" ] && return 0
    echo "building $name (instrumented)"
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/$name.swiftmodule" \
        -emit-library -static -o "$out/lib$name.a" "${@}" \
        -Xcc -fmodule-map-file=Sources/CZlib/module.modulemap -Xcc -fmodule-map-file=Sources/CSPNG/module.modulemap \
        -Xcc -fmodule-map-file=Sources/CTurboJPEG/module.modulemap -I Sources/CZlib -I Sources/CSPNG -I Sources/CTurboJPEG
}
module SwiftProtobuf $(find .build/checkouts/swift-protobuf/Sources/SwiftProtobuf -name '*.swift')
module TaoTensor Sources/TaoTensor/*.swift
module TaoSpec Sources/TaoSpec/*.swift Sources/TaoSpec/Generated/*.swift
module TaoData Sources/TaoData/*.swift Sources/TaoData/Generated/*.swift
run() {   # run TARGET LIBRARIES...
    local t=$1; shift
    echo "building fuzz-$t"
    swiftc "${flags[@]}" -Xcc -fmodule-map-file=Sources/CZlib/module.modulemap -Xcc -fmodule-map-file=Sources/CSPNG/module.modulemap \
        -Xcc -fmodule-map-file=Sources/CTurboJPEG/module.modulemap -I Sources/CZlib -I Sources/CSPNG -I Sources/CTurboJPEG \
        "Fuzz/$t/fuzz.swift" "$@" -lSwiftProtobuf -o "$out/fuzz-$t"
    mkdir -p "$out/corpus/$t"
    echo "fuzzing $t for $seconds s (seeds: Fuzz/$t/corpus)"
    local status=0
    ASAN_OPTIONS=detect_leaks=1 "$out/fuzz-$t" -max_total_time="$seconds" -timeout=10 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$out/" "$out/corpus/$t" "Fuzz/$t/corpus" > "$out/fuzz-$t.log" 2>&1 || status=$?
    grep -E "stat::|ERROR|SUMMARY|Done" "$out/fuzz-$t.log" || true
    [ $status = 0 ] || { echo "fuzz-$t FAILED: the input is the crash-*, leak-* or timeout-* file in $out/ (log: $out/fuzz-$t.log)"; exit 1; }
}
[[ $which == all || $which == spec ]] && run spec -lTaoSpec
[[ $which == all || $which == kitti ]] && run kitti -lTaoData -lTaoTensor -lz -lspng -lturbojpeg
[[ $which == all || $which == tfrecord ]] && run tfrecord -lTaoData -lTaoTensor -lz -lspng -lturbojpeg
echo "fuzzing done"
