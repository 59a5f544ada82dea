import Foundation
import TaoData

/// One box to draw on an image: its corners in the image's pixels, its label ("car 0.93"), its
/// colour, and whether it is drawn dashed (ground truth beside predictions).
public struct BoxMark: Sendable {
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public var label: String
    public var color: RGB
    public var dashed: Bool
    public init(x1: Double, y1: Double, x2: Double, y2: Double, label: String, color: RGB, dashed: Bool = false) {
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2; self.label = label; self.color = color; self.dashed = dashed
    }
}

/// Images with boxes and their labels drawn on, as TAO's `images_annotated/` and the validation
/// images of a results folder show them.
public enum Annotator {
    /// The label font for an image: readable on small images, not overbearing on large ones.
    static func font(_ image: Image) -> Font { Font(size: max(9, min(18, Double(min(image.width, image.height)) / 22)), bold: true) }

    /// `image` (grey or RGB) with every box outlined in its colour and its label on a tag of that
    /// colour above the box (inside it when the box touches the top edge). RGB out.
    public static func draw(_ image: Image, _ marks: [BoxMark], lineWidth: Double = 2) -> Image {
        let c = CairoCanvas(image: image)
        let font = font(image)
        for m in marks {
            let r = Rect(m.x1, m.y1, max(0, m.x2 - m.x1), max(0, m.y2 - m.y1))
            if m.dashed {
                let corners = [Point(r.x, r.y), Point(r.x + r.width, r.y), Point(r.x + r.width, r.y + r.height), Point(r.x, r.y + r.height), Point(r.x, r.y)]
                c.polyline(corners, color: m.color, width: lineWidth, dash: [4, 3])
            } else {
                c.stroke(r, color: m.color, width: lineWidth)
            }
        }
        // Tags after every outline, so that no box is drawn over a label.
        for m in marks where !m.label.isEmpty {
            let w = TextMetrics.width(m.label, font: font) + 6, h = font.size + 4
            let x = min(max(0, m.x1 - lineWidth / 2), Double(image.width) - w)
            let y = m.y1 - lineWidth / 2 - h >= 0 ? m.y1 - lineWidth / 2 - h : m.y1 + lineWidth / 2
            c.fill(Rect(x, y, w, h), color: m.color, alpha: m.dashed ? 0.7 : 1)
            c.text(m.label, at: Point(x + 3, y + h / 2), font: font, color: m.color.luminance > 0.6 ? RGB.black : RGB.white, anchor: .start, middle: true)
        }
        return c.image()
    }

    /// Images side by side in rows of `columns`, each scaled so that its longer side is `cell`
    /// pixels, and captioned below, a line per "\n" (a contact sheet: e.g. classified images with
    /// their top-1 labels, in green when right and red when wrong). Rows are as tall as their images.
    public static func sheet(_ items: [(image: Image, caption: String, color: RGB)], columns: Int, cell: Int) -> Image {
        let cols = max(1, min(columns, items.count)), rows = (items.count + cols - 1) / cols
        let captionFont = Font(size: 11.5, bold: true), lineH = 16
        func size(_ img: Image) -> (Int, Int) {
            let scale = Double(cell) / Double(max(img.width, img.height))
            return (max(1, Int(Double(img.width) * scale)), max(1, Int(Double(img.height) * scale)))
        }
        let cellH = items.map { size($0.image).1 }.max() ?? cell
        let capH = lineH * (items.map { $0.caption.split(separator: "\n").count }.max() ?? 1) + 4
        let c = CairoCanvas(width: cols * (cell + 8) + 8, height: rows * (cellH + capH + 10) + 8)
        for (i, item) in items.enumerated() {
            let x0 = 8 + (i % cols) * (cell + 8), y0 = 8 + (i / cols) * (cellH + capH + 10)
            let (w, h) = size(item.image)
            c.blit(Self.resizeNearest(item.image, width: w, height: h), x: x0 + (cell - w) / 2, y: y0 + (cellH - h) / 2)
            for (k, line) in item.caption.split(separator: "\n").enumerated() {
                var text = String(line)
                while text.count > 3, TextMetrics.width(text, font: captionFont) > Double(cell) { text = String(text.dropLast(2)) + "…" }
                c.text(text, at: Point(Double(x0 + cell / 2), Double(y0 + cellH + 4 + lineH * k + lineH / 2)), font: captionFont, color: item.color, anchor: .middle, middle: true)
            }
        }
        return c.image()
    }

    /// Nearest-neighbour resampling (sharp pixels for the small images a contact sheet enlarges).
    public static func resizeNearest(_ img: Image, width: Int, height: Int) -> Image {
        var out = [UInt8](repeating: 0, count: width * height * img.channels)
        for y in 0..<height {
            let sy = min(img.height - 1, y * img.height / height)
            for x in 0..<width {
                let sx = min(img.width - 1, x * img.width / width)
                for k in 0..<img.channels { out[(y * width + x) * img.channels + k] = img.pixels[(sy * img.width + sx) * img.channels + k] }
            }
        }
        return Image(width: width, height: height, channels: img.channels, pixels: out)
    }
}

extension CairoCanvas {
    /// Copies `image` (grey or RGB) onto the canvas with its top-left corner at (x, y).
    func blit(_ image: Image, x: Int, y: Int) {
        paint(CairoCanvas(image: image), x: Double(x), y: Double(y))
    }
}
