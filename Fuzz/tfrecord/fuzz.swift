import TaoData

/// libFuzzer target: any bytes as a TFRecord file of tf.train.Examples must read or fail with an
/// error naming the record, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let records = try? TFRecord.parse(bytes, file: "fuzz.tfrecord") {
        for r in records { _ = try? TFExample.decode(r) }
    }
    // The same bytes as one record's payload, framed correctly: the Example decoder alone.
    if let framed = try? TFRecord.parse(TFRecord.frame(bytes), file: "framed.tfrecord") {
        precondition(framed == [bytes], "a framed record reads back as itself")
        _ = try? TFExample.decode(framed[0])
    }
    return 0
}
