import TaoData

/// libFuzzer target: any bytes as a KITTI label file must parse or fail with an error naming the line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let objects = try? KITTI.parse(text, file: "fuzz.txt") {
        // What parses writes back as lines that parse to the same objects.
        let again = try! KITTI.parse(objects.map(\.line).joined(separator: "\n"), file: "again.txt")
        precondition(again.count == objects.count)
    }
    return 0
}
