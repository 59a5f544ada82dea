import CCairo
import Foundation
import TaoData

/// An 8-bit RGB colour.
public struct RGB: Sendable, Equatable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    /// Tableau's ten categorical colours (matplotlib's default cycle): one per series or class.
    public static let palette: [RGB] = [
        RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40), RGB(148, 103, 189),
        RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127), RGB(188, 189, 34), RGB(23, 190, 207),
    ]
    public static func series(_ i: Int) -> RGB { palette[i % palette.count] }

    public static let black = RGB(0, 0, 0), white = RGB(255, 255, 255)
    public static let text = RGB(40, 40, 40), grid = RGB(228, 228, 228), axis = RGB(90, 90, 90)

    /// Relative luminance 0…1, to pick black or white text on this colour.
    public var luminance: Double { (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255 }
    var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
}

public struct Point: Sendable, Equatable {
    public var x: Double, y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
}

public struct Rect: Sendable, Equatable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(_ x: Double, _ y: Double, _ width: Double, _ height: Double) { self.x = x; self.y = y; self.width = width; self.height = height }
}

/// Where a text's anchor point sits on it: horizontally at its start, middle or end; vertically on
/// its baseline or at the middle of its capitals.
public enum TextAnchor: Sendable { case start, middle, end }

/// A text style: size in pixels (points at 72 dpi), weight and colour.
public struct Font: Sendable {
    public var size: Double
    public var bold: Bool
    public init(size: Double, bold: Bool = false) { self.size = size; self.bold = bold }
    /// The face every figure uses: DejaVu Sans (Debian's fonts-dejavu-core), else fontconfig's sans-serif.
    static let family = "DejaVu Sans"
}

/// What a figure draws on. Two implementations share every layout decision: `CairoCanvas` rasterizes
/// with antialiasing (PNG, annotated images) and `SVGCanvas` writes SVG elements whose text stays text
/// (searchable, selectable, sharp in print). Text is measured once, by cairo, for both.
public protocol Canvas: AnyObject {
    func polyline(_ points: [Point], color: RGB, width: Double, dash: [Double])
    func fill(_ rect: Rect, color: RGB, alpha: Double)
    func stroke(_ rect: Rect, color: RGB, width: Double)
    func dot(_ center: Point, radius: Double, color: RGB)
    /// Text with its anchor at `at` (on the baseline, or at mid-capital height when `middle`),
    /// turned by `rotation` degrees clockwise about that point.
    func text(_ s: String, at: Point, font: Font, color: RGB, anchor: TextAnchor, middle: Bool, rotation: Double)
}

public extension Canvas {
    func line(_ a: Point, _ b: Point, color: RGB, width: Double = 1, dash: [Double] = []) {
        polyline([a, b], color: color, width: width, dash: dash)
    }
    func text(_ s: String, at: Point, font: Font, color: RGB = RGB.text, anchor: TextAnchor = .start, middle: Bool = false) {
        text(s, at: at, font: font, color: color, anchor: anchor, middle: middle, rotation: 0)
    }
}

/// Text extents, measured with cairo's own font machinery (the same face the PNG renders).
public enum TextMetrics {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var scratch: OpaquePointer? = {
        let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1)
        return cairo_create(surface)
    }()

    /// The advance width of `s` in pixels.
    public static func width(_ s: String, font: Font) -> Double {
        lock.lock(); defer { lock.unlock() }
        guard let cr = scratch else { return Double(s.count) * font.size * 0.6 }
        CairoCanvas.select(font, on: cr)
        var e = cairo_text_extents_t()
        cairo_text_extents(cr, s, &e)
        return e.x_advance
    }

    /// Half the height of a capital letter: the shift that centres a line of text on a point.
    static func midline(_ font: Font) -> Double { font.size * 0.36 }
}

/// A cairo context on an ARGB32 image surface.
public final class CairoCanvas: Canvas {
    let surface: OpaquePointer
    let cr: OpaquePointer
    public let width: Int, height: Int

    /// A white canvas.
    public init(width: Int, height: Int) {
        self.width = width; self.height = height
        surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height))
        cr = cairo_create(surface)
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
    }

    /// A canvas holding `image` (grey or RGB), to draw on.
    public convenience init(image: Image) {
        self.init(width: image.width, height: image.height)
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        let data = cairo_image_surface_get_data(surface)!
        for y in 0..<height {
            let row = UnsafeMutableRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
            for x in 0..<width {
                let p = (y * width + x) * image.channels
                let (r, g, b) = image.channels >= 3 ? (image.pixels[p], image.pixels[p + 1], image.pixels[p + 2]) : (image.pixels[p], image.pixels[p], image.pixels[p])
                row[x] = 0xFF00_0000 | UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b)
            }
        }
        cairo_surface_mark_dirty(surface)
    }

    deinit {
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
    }

    static func select(_ font: Font, on cr: OpaquePointer) {
        cairo_select_font_face(cr, Font.family, CAIRO_FONT_SLANT_NORMAL, font.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, font.size)
    }

    private func source(_ c: RGB, _ alpha: Double = 1) {
        cairo_set_source_rgba(cr, Double(c.r) / 255, Double(c.g) / 255, Double(c.b) / 255, alpha)
    }

    public func polyline(_ points: [Point], color: RGB, width: Double, dash: [Double]) {
        guard let first = points.first else { return }
        source(color)
        cairo_set_line_width(cr, width)
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
        cairo_set_dash(cr, dash, Int32(dash.count), 0)
        cairo_move_to(cr, first.x, first.y)
        for p in points.dropFirst() { cairo_line_to(cr, p.x, p.y) }
        cairo_stroke(cr)
        cairo_set_dash(cr, nil, 0, 0)
    }

    public func fill(_ r: Rect, color: RGB, alpha: Double) {
        source(color, alpha)
        cairo_rectangle(cr, r.x, r.y, r.width, r.height)
        cairo_fill(cr)
    }

    public func stroke(_ r: Rect, color: RGB, width: Double) {
        source(color)
        cairo_set_line_width(cr, width)
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER)
        cairo_rectangle(cr, r.x, r.y, r.width, r.height)
        cairo_stroke(cr)
    }

    public func dot(_ c: Point, radius: Double, color: RGB) {
        source(color)
        cairo_new_sub_path(cr)
        cairo_arc(cr, c.x, c.y, radius, 0, 2 * Double.pi)
        cairo_fill(cr)
    }

    public func text(_ s: String, at p: Point, font: Font, color: RGB, anchor: TextAnchor, middle: Bool, rotation: Double) {
        guard !s.isEmpty else { return }
        cairo_save(cr)
        Self.select(font, on: cr)
        source(color)
        cairo_translate(cr, p.x, p.y)
        cairo_rotate(cr, rotation * Double.pi / 180)
        let w = TextMetrics.width(s, font: font)
        let dx = anchor == .start ? 0 : anchor == .middle ? -w / 2 : -w
        cairo_move_to(cr, dx, middle ? TextMetrics.midline(font) : 0)
        cairo_show_text(cr, s)
        cairo_restore(cr)
    }

    /// Draws another canvas's pixels with its top-left corner at (x, y).
    func paint(_ other: CairoCanvas, x: Double, y: Double) {
        cairo_surface_flush(other.surface)
        cairo_save(cr)
        cairo_set_source_surface(cr, other.surface, x, y)
        cairo_paint(cr)
        cairo_restore(cr)
    }

    /// The drawing as an RGB image.
    public func image() -> Image {
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        let data = cairo_image_surface_get_data(surface)!
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let row = UnsafeRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
            for x in 0..<width {
                let v = row[x], p = (y * width + x) * 3
                pixels[p] = UInt8(truncatingIfNeeded: v >> 16); pixels[p + 1] = UInt8(truncatingIfNeeded: v >> 8); pixels[p + 2] = UInt8(truncatingIfNeeded: v)
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// The drawing as a PNG file's bytes.
    public func png() throws -> [UInt8] { try ImageCodec.encodePNG(image()) }
}

/// SVG 1.1 written element by element; text is `<text>` in DejaVu Sans, so it can be searched and selected.
public final class SVGCanvas: Canvas {
    public let width: Int, height: Int
    private var body: [String] = []

    public init(width: Int, height: Int) {
        self.width = width; self.height = height
        body.append("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>")
    }

    private func n(_ v: Double) -> String { String(format: "%.2f", v) }

    public func polyline(_ points: [Point], color: RGB, width: Double, dash: [Double]) {
        guard points.count > 1 else { return }
        let pts = points.map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " ")
        let d = dash.isEmpty ? "" : " stroke-dasharray=\"\(dash.map(n).joined(separator: ","))\""
        body.append("<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\"\(d)/>")
    }

    public func fill(_ r: Rect, color: RGB, alpha: Double) {
        let a = alpha < 1 ? " fill-opacity=\"\(n(alpha))\"" : ""
        body.append("<rect x=\"\(n(r.x))\" y=\"\(n(r.y))\" width=\"\(n(r.width))\" height=\"\(n(r.height))\" fill=\"\(color.hex)\"\(a)/>")
    }

    public func stroke(_ r: Rect, color: RGB, width: Double) {
        body.append("<rect x=\"\(n(r.x))\" y=\"\(n(r.y))\" width=\"\(n(r.width))\" height=\"\(n(r.height))\" fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"\(n(width))\"/>")
    }

    public func dot(_ c: Point, radius: Double, color: RGB) {
        body.append("<circle cx=\"\(n(c.x))\" cy=\"\(n(c.y))\" r=\"\(n(radius))\" fill=\"\(color.hex)\"/>")
    }

    public func text(_ s: String, at p: Point, font: Font, color: RGB, anchor: TextAnchor, middle: Bool, rotation: Double) {
        guard !s.isEmpty else { return }
        let a = anchor == .start ? "start" : anchor == .middle ? "middle" : "end"
        let y = p.y + (middle ? TextMetrics.midline(font) : 0)
        let rot = rotation == 0 ? "" : " transform=\"rotate(\(n(rotation)) \(n(p.x)) \(n(p.y)))\""
        body.append("<text x=\"\(n(p.x))\" y=\"\(n(y))\" font-family=\"\(Font.family), sans-serif\" font-size=\"\(n(font.size))\""
                    + (font.bold ? " font-weight=\"bold\"" : "") + " fill=\"\(color.hex)\" text-anchor=\"\(a)\"\(rot)>\(Self.escape(s))</text>")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The document's bytes.
    public func svg() -> [UInt8] {
        let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        return Array((head + body.joined(separator: "\n") + "\n</svg>\n").utf8)
    }
}

/// Something drawn at a fixed size, rendered to PNG and to SVG from the same drawing code.
public protocol Figure {
    var width: Int { get }
    var height: Int { get }
    func draw(on canvas: Canvas)
}

public extension Figure {
    func png() throws -> [UInt8] {
        let c = CairoCanvas(width: width, height: height)
        draw(on: c)
        return try c.png()
    }

    func svg() -> [UInt8] {
        let c = SVGCanvas(width: width, height: height)
        draw(on: c)
        return c.svg()
    }
}
