import Foundation
import TaoData
import TaoMetrics

/// A small RGB raster for the results folder's plots (PNG through libspng): lines, boxes and a
/// 3×5 digit font for tick labels. Curves are labelled by file name and color, not by text.
struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }

    mutating func fill(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8)) {
        let (ya, yb, xa, xb) = (max(0, y0), min(height, y1), max(0, x0), min(width, x1))
        guard ya < yb, xa < xb else { return }
        for y in ya..<yb { for x in xa..<xb { set(x, y, c) } }
    }

    /// A line two pixels thick (Bresenham).
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), thick: Bool = true) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            set(x, y, c)
            if thick { set(x + 1, y, c); set(x, y + 1, c) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    static let glyphs: [Character: [String]] = [
        "0": ["111", "101", "101", "101", "111"], "1": ["010", "110", "010", "010", "111"], "2": ["111", "001", "111", "100", "111"],
        "3": ["111", "001", "111", "001", "111"], "4": ["101", "101", "111", "001", "001"], "5": ["111", "100", "111", "001", "111"],
        "6": ["111", "100", "111", "101", "111"], "7": ["111", "001", "010", "010", "010"], "8": ["111", "101", "111", "101", "111"],
        "9": ["111", "101", "111", "001", "111"], ".": ["000", "000", "000", "000", "010"], "-": ["000", "000", "111", "000", "000"],
        "%": ["101", "001", "010", "100", "101"], "e": ["000", "111", "111", "100", "111"],
    ]

    /// Draws digits (and . - % e) with 3×5 glyphs at `scale`.
    mutating func text(_ s: String, x: Int, y: Int, scale: Int = 2, _ c: (UInt8, UInt8, UInt8) = (60, 60, 60)) {
        var cx = x
        for ch in s {
            if let g = Canvas.glyphs[ch] {
                for (r, row) in g.enumerated() { for (k, bit) in row.enumerated() where bit == "1" {
                    fill(cx + k * scale, y + r * scale, cx + (k + 1) * scale, y + (r + 1) * scale, c)
                } }
            }
            cx += 4 * scale
        }
    }

    func png() throws -> Data { Data(try ImageCodec.encodePNG(Image(width: width, height: height, channels: 3, pixels: pixels))) }
}

enum Plots {
    static let colors: [(UInt8, UInt8, UInt8)] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]

    /// Curves over epochs 1…n (first series blue, second orange), with y ticks.
    static func curves(_ series: [[Double]], percent: Bool = false) throws -> Data {
        var c = Canvas(width: 640, height: 400)
        let (left, right, top, bottom) = (70, 620, 20, 360)
        let all = series.flatMap { $0 }.filter(\.isFinite)
        guard let lo0 = all.min(), let hi0 = all.max() else { return try c.png() }
        let pad = max((hi0 - lo0) * 0.05, 1e-6)
        let (lo, hi) = (lo0 - pad, hi0 + pad)
        let n = series.map(\.count).max() ?? 1
        func px(_ i: Int) -> Int { left + (n > 1 ? i * (right - left) / (n - 1) : (right - left) / 2) }
        func py(_ v: Double) -> Int { bottom - Int((v - lo) / (hi - lo) * Double(bottom - top)) }
        for t in 0...4 {
            let v = lo + (hi - lo) * Double(t) / 4
            c.line(left, py(v), right, py(v), (225, 225, 225), thick: false)
            c.text(percent ? String(format: "%.1f%%", v * 100) : String(format: "%.3f", v), x: 4, y: py(v) - 5)
        }
        c.line(left, top, left, bottom, (0, 0, 0), thick: false)
        c.line(left, bottom, right, bottom, (0, 0, 0), thick: false)
        for i in 0..<n { c.line(px(i), bottom, px(i), bottom + 4, (0, 0, 0), thick: false) }
        c.text("1", x: px(0) - 3, y: bottom + 10)
        c.text("\(n)", x: px(n - 1) - 6, y: bottom + 10)
        for (k, s) in series.enumerated() {
            let color = colors[k % colors.count]
            // Epochs without a value (no validation that epoch) are gaps.
            for i in 0..<s.count where s[i].isFinite {
                if i > 0, s[i - 1].isFinite { c.line(px(i - 1), py(s[i - 1]), px(i), py(s[i]), color) }
                c.fill(px(i) - 3, py(s[i]) - 3, px(i) + 4, py(s[i]) + 4, color)
            }
        }
        return try c.png()
    }

    /// The confusion matrix as a heat map, each row normalized by its class's count; counts in the cells when they fit.
    static func confusion(_ m: [[Int]]) throws -> Data {
        let n = max(m.count, 1)
        let cell = max(12, min(60, 600 / n))
        var c = Canvas(width: cell * n + 20, height: cell * n + 20)
        for (r, row) in m.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (k, v) in row.enumerated() {
                let f = Double(v) / Double(total)
                // Errors are rarer than hits: scale them up so that a 5% confusion is plainly visible.
                let shade = UInt8(255 - Int(min(1, r == k ? f : f * 4) * 200))
                let color: (UInt8, UInt8, UInt8) = r == k ? (shade, 255, shade) : (255, shade, shade)
                c.fill(10 + k * cell, 10 + r * cell, 10 + (k + 1) * cell - 1, 10 + (r + 1) * cell - 1, color)
                let label = "\(v)"
                if label.count * 8 + 4 <= cell { c.text(label, x: 12 + k * cell, y: 10 + r * cell + cell / 2 - 5) }
            }
        }
        return try c.png()
    }
}

extension Plots {
    /// Precision (y) against recall (x), both 0…1, one curve per class in the class colours.
    static func precisionRecall(_ curves: [(recall: [Double], precision: [Double])]) throws -> Data {
        var c = Canvas(width: 520, height: 440)
        let (left, right, top, bottom) = (60, 500, 20, 400)
        func px(_ v: Double) -> Int { left + Int(v * Double(right - left)) }
        func py(_ v: Double) -> Int { bottom - Int(v * Double(bottom - top)) }
        for t in 0...4 {
            let v = Double(t) / 4
            c.line(left, py(v), right, py(v), (225, 225, 225), thick: false)
            c.line(px(v), top, px(v), bottom, (225, 225, 225), thick: false)
            c.text(String(format: "%.2f", v), x: 4, y: py(v) - 5)
            c.text(String(format: "%.2f", v), x: px(v) - 14, y: bottom + 10)
        }
        c.line(left, top, left, bottom, (0, 0, 0), thick: false)
        c.line(left, bottom, right, bottom, (0, 0, 0), thick: false)
        for (k, curve) in curves.enumerated() {
            let color = colors[k % colors.count]
            var last: (Int, Int)? = nil
            for (r, p) in zip(curve.recall, curve.precision) {
                let point = (px(r), py(p))
                if let l = last { c.line(l.0, l.1, point.0, point.1, color) }
                last = point
            }
        }
        return try c.png()
    }
}

/// Boxes drawn on an image (RGB out, a grayscale image is expanded), each with its score above it.
enum Annotation {
    static func draw(_ img: Image, boxes: [(box: Box, color: (UInt8, UInt8, UInt8), score: Double)], lineWidth: Int) -> Image {
        var c = Canvas(width: img.width, height: img.height)
        for i in 0..<(img.width * img.height) {
            for k in 0..<3 { c.pixels[i * 3 + k] = img.pixels[i * img.channels + (img.channels == 3 ? k : 0)] }
        }
        let w = max(1, lineWidth)
        for (b, color, score) in boxes {
            let (x1, y1, x2, y2) = (Int(b.x1.rounded()), Int(b.y1.rounded()), Int(b.x2.rounded()) - 1, Int(b.y2.rounded()) - 1)
            for t in 0..<w {
                c.fill(x1 - t, y1 - t, x2 + t + 1, y1 - t + 1, color)
                c.fill(x1 - t, y2 + t, x2 + t + 1, y2 + t + 1, color)
                c.fill(x1 - t, y1 - t, x1 - t + 1, y2 + t + 1, color)
                c.fill(x2 + t, y1 - t, x2 + t + 1, y2 + t + 1, color)
            }
            let label = String(format: "%.2f", score)
            let ty = y1 - w - 12 >= 0 ? y1 - w - 12 : y1 + w + 1
            c.fill(x1 - w, ty, x1 - w + label.count * 8 + 2, ty + 12, color)
            c.text(label, x: x1 - w + 2, y: ty + 1, scale: 2, (255, 255, 255))
        }
        return Image(width: img.width, height: img.height, channels: 3, pixels: c.pixels)
    }
}
