import CSPNG
import CTurboJPEG
import Foundation

/// An 8-bit image in memory: rows of pixels, channels interleaved (HWC), 1 (gray) or 3 (RGB) channels.
public struct Image: Equatable, Sendable {
    public var width: Int, height: Int, channels: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel count does not match \(width)x\(height)x\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// JPEG (libjpeg-turbo) and PNG (libspng) decoding and encoding.
public enum ImageCodec {
    /// Decodes a JPEG or PNG file into `channels` channels (1: luminance, 3: RGB).
    public static func decode(path: String, channels: Int) throws -> Image {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "cannot read the image (missing or unreadable)") }
        return try decode(Array(data), name: path, channels: channels)
    }

    public static func decode(_ bytes: [UInt8], name: String, channels: Int) throws -> Image {
        precondition(channels == 1 || channels == 3)
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return try decodeJPEG(bytes, name: name, channels: channels) }
        if bytes.count >= 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try decodePNG(bytes, name: name, channels: channels)
        }
        throw DataError(name, bytes.isEmpty ? "the image file is empty" : "not a JPEG or PNG image")
    }

    /// Width and height from a JPEG or PNG header, without decoding the pixels.
    public static func size(path: String) throws -> (width: Int, height: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(path, "cannot read the image (missing or unreadable)") }
        let bytes = [UInt8](data)
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF {
            guard let h = tjInitDecompress() else { throw DataError(path, "cannot start the JPEG decoder") }
            defer { tjDestroy(h) }
            var w: Int32 = 0, ht: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
            guard tjDecompressHeader3(h, bytes, UInt(bytes.count), &w, &ht, &sub, &cs) == 0, w > 0, ht > 0 else {
                throw DataError(path, "corrupt JPEG: \(String(cString: tjGetErrorStr2(h)))")
            }
            return (Int(w), Int(ht))
        }
        if bytes.count >= 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            guard let ctx = spng_ctx_new(0) else { throw DataError(path, "cannot start the PNG decoder") }
            defer { spng_ctx_free(ctx) }
            var ihdr = spng_ihdr()
            var r = bytes.withUnsafeBytes { spng_set_png_buffer(ctx, $0.baseAddress, $0.count) }
            if r == 0 { r = spng_get_ihdr(ctx, &ihdr) }
            guard r == 0 else { throw DataError(path, "corrupt PNG: \(String(cString: spng_strerror(r)))") }
            return (Int(ihdr.width), Int(ihdr.height))
        }
        throw DataError(path, bytes.isEmpty ? "the image file is empty" : "not a JPEG or PNG image")
    }

    static func decodeJPEG(_ bytes: [UInt8], name: String, channels: Int) throws -> Image {
        guard let h = tjInitDecompress() else { throw DataError(name, "cannot start the JPEG decoder") }
        defer { tjDestroy(h) }
        var w: Int32 = 0, ht: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        guard tjDecompressHeader3(h, bytes, UInt(bytes.count), &w, &ht, &sub, &cs) == 0, w > 0, ht > 0 else {
            throw DataError(name, "corrupt JPEG: \(String(cString: tjGetErrorStr2(h)))")
        }
        var out = [UInt8](repeating: 0, count: Int(w) * Int(ht) * channels)
        let fmt = channels == 3 ? Int32(TJPF_RGB.rawValue) : Int32(TJPF_GRAY.rawValue)
        let r = tjDecompress2(h, bytes, UInt(bytes.count), &out, w, 0, ht, fmt, 0)
        // A warning (e.g. premature end of data) still leaves a truncated image: refuse it.
        guard r == 0 else { throw DataError(name, "corrupt JPEG: \(String(cString: tjGetErrorStr2(h)))") }
        return Image(width: Int(w), height: Int(ht), channels: channels, pixels: out)
    }

    static func decodePNG(_ bytes: [UInt8], name: String, channels: Int) throws -> Image {
        guard let ctx = spng_ctx_new(0) else { throw DataError(name, "cannot start the PNG decoder") }
        defer { spng_ctx_free(ctx) }
        func fail(_ code: Int32) -> DataError { DataError(name, "corrupt PNG: \(String(cString: spng_strerror(code)))") }
        var r = bytes.withUnsafeBytes { spng_set_png_buffer(ctx, $0.baseAddress, $0.count) }
        guard r == 0 else { throw fail(r) }
        var ihdr = spng_ihdr()
        r = spng_get_ihdr(ctx, &ihdr)
        guard r == 0 else { throw fail(r) }
        let (w, h) = (Int(ihdr.width), Int(ihdr.height))
        // Decode to RGB8 (libspng converts every color type and depth), then to gray if asked.
        var size = 0
        r = spng_decoded_image_size(ctx, Int32(SPNG_FMT_RGB8.rawValue), &size)
        guard r == 0 else { throw fail(r) }
        var rgb = [UInt8](repeating: 0, count: size)
        r = spng_decode_image(ctx, &rgb, size, Int32(SPNG_FMT_RGB8.rawValue), Int32(SPNG_DECODE_TRNS.rawValue))
        guard r == 0 else { throw fail(r) }
        if channels == 3 { return Image(width: w, height: h, channels: 3, pixels: rgb) }
        var gray = [UInt8](repeating: 0, count: w * h)
        for i in 0..<(w * h) {
            // ITU-R BT.601 luma, as libjpeg uses for RGB → gray.
            let v = 0.299 * Float(rgb[3 * i]) + 0.587 * Float(rgb[3 * i + 1]) + 0.114 * Float(rgb[3 * i + 2])
            gray[i] = UInt8(min(255, max(0, v.rounded())))
        }
        return Image(width: w, height: h, channels: 1, pixels: gray)
    }

    /// Encodes a PNG (lossless).
    public static func encodePNG(_ img: Image) throws -> [UInt8] {
        guard let ctx = spng_ctx_new(Int32(SPNG_CTX_ENCODER.rawValue)) else { throw DataError("png", "cannot start the PNG encoder") }
        defer { spng_ctx_free(ctx) }
        spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1)
        var ihdr = spng_ihdr()
        ihdr.width = UInt32(img.width); ihdr.height = UInt32(img.height); ihdr.bit_depth = 8
        ihdr.color_type = UInt8(img.channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR.rawValue : SPNG_COLOR_TYPE_GRAYSCALE.rawValue)
        spng_set_ihdr(ctx, &ihdr)
        var r = img.pixels.withUnsafeBytes { spng_encode_image(ctx, $0.baseAddress, $0.count, Int32(SPNG_FMT_PNG.rawValue), Int32(SPNG_ENCODE_FINALIZE.rawValue)) }
        guard r == 0 else { throw DataError("png", "encoding failed: \(String(cString: spng_strerror(r)))") }
        var len = 0
        guard let buf = spng_get_png_buffer(ctx, &len, &r) else { throw DataError("png", "encoding failed") }
        defer { free(buf) }
        return Array(UnsafeBufferPointer(start: buf.assumingMemoryBound(to: UInt8.self), count: len))
    }

    /// Encodes a JPEG at `quality` (1–100).
    public static func encodeJPEG(_ img: Image, quality: Int = 95) throws -> [UInt8] {
        guard let h = tjInitCompress() else { throw DataError("jpeg", "cannot start the JPEG encoder") }
        defer { tjDestroy(h) }
        var buf: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let fmt = img.channels == 3 ? Int32(TJPF_RGB.rawValue) : Int32(TJPF_GRAY.rawValue)
        let sub = img.channels == 3 ? Int32(TJSAMP_420.rawValue) : Int32(TJSAMP_GRAY.rawValue)
        guard tjCompress2(h, img.pixels, Int32(img.width), 0, Int32(img.height), fmt, &buf, &size, sub, Int32(quality), 0) == 0, let buf else {
            throw DataError("jpeg", "encoding failed: \(String(cString: tjGetErrorStr2(h)))")
        }
        defer { tjFree(buf) }
        return Array(UnsafeBufferPointer(start: buf, count: Int(size)))
    }
}
