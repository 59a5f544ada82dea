import Foundation
import TaoMetrics

/// How one class's boxes are drawn into DetectNet_v2's training targets (TAO's
/// `bbox_rasterizer_config.target_class_config`).
public struct RasterizerClassConfig: Equatable, Sendable {
    /// Centre of the coverage ellipse as a fraction of the box (0.5: the middle).
    public var centerX: Double = 0.5, centerY: Double = 0.5
    /// Its radii as fractions of the distance from that centre to the nearer box edge.
    public var radiusX: Double = 0.4, radiusY: Double = 0.4
    /// The smallest radius, in grid cells (the aspect ratio is kept).
    public var minRadius: Double = 1
    public init() {}
}

/// DetectNet_v2's grid: the input size, the output stride and how box distances are scaled
/// (`objective_set.bbox.scale` and `offset`).
public struct DetectNetGrid: Equatable, Sendable {
    public var inputWidth: Int, inputHeight: Int
    public var stride: Int
    public var scale: Double = 35
    public var offset: Double = 0.5
    public init(inputWidth: Int, inputHeight: Int, stride: Int = 16) { self.inputWidth = inputWidth; self.inputHeight = inputHeight; self.stride = stride }
    public var width: Int { inputWidth / stride }
    public var height: Int { inputHeight / stride }

    /// Where cell (row, column) predicts from, in input pixels: TAO's grid, column·stride + offset.
    public func anchor(row: Int, column: Int) -> (x: Double, y: Double) {
        (Double(column * stride) + offset, Double(row * stride) + offset)
    }

    /// The four box outputs of a cell for a box (distances to its left, top, right and bottom edges
    /// in units of `scale`).
    public func encode(_ b: Box, row: Int, column: Int) -> [Double] {
        let (x, y) = anchor(row: row, column: column)
        return [(x - b.x1) / scale, (y - b.y1) / scale, (b.x2 - x) / scale, (b.y2 - y) / scale]
    }

    /// A cell's box outputs as a box in input pixels, clipped to the image (TAO's predictions_to_absolute).
    public func decode(_ v: [Double], row: Int, column: Int) -> Box {
        let (x, y) = anchor(row: row, column: column)
        let l = min(max(x - v[0] * scale, 0), Double(inputWidth)), t = min(max(y - v[1] * scale, 0), Double(inputHeight))
        let r = min(max(x + v[2] * scale, l), Double(inputWidth)), b = min(max(y + v[3] * scale, t), Double(inputHeight))
        return Box(l, t, r, b)
    }
}

/// The training targets of one image: coverage per class, four box distances per class, and the
/// weight of each cell's box loss (TAO's `cov_norm`: the inverse of the coverage ellipse's area).
public struct DetectNetTargets: Equatable, Sendable {
    public var coverage: [Float]   // [C, H, W]
    public var boxes: [Float]      // [4C, H, W]
    public var boxWeight: [Float]  // [C, H, W]

    /// Draws `objects` (class index, box in input pixels) as TAO's rasterizer does: per box a
    /// coverage ellipse (`RasterizerClassConfig`) inside a larger deadzone ellipse (`deadzone`
    /// interpolates from the coverage radii toward the box's own half-size); boxes are drawn by
    /// ascending bottom edge, so a nearer object overwrites a farther one, and the deadzone ring of a
    /// box clears what farther boxes of its class drew there. A cell is inside an ellipse when its
    /// centre is.
    public init(objects: [(classIndex: Int, box: Box)], grid: DetectNetGrid, classes: [RasterizerClassConfig], deadzone: Double) {
        let (w, h, n) = (grid.width, grid.height, classes.count)
        coverage = Array(repeating: 0, count: n * h * w)
        boxes = Array(repeating: 0, count: 4 * n * h * w)
        boxWeight = Array(repeating: 0, count: n * h * w)
        let s = Double(grid.stride)
        for o in objects.enumerated().sorted(by: { $0.element.box.y2 != $1.element.box.y2 ? $0.element.box.y2 < $1.element.box.y2 : $0.offset < $1.offset }).map(\.element) {
            let c = o.classIndex, cfg = classes[c]
            // Output-space box and ellipses (bbox_from_rumpy_params).
            let (x1, y1, x2, y2) = (o.box.x1 / s, o.box.y1 / s, o.box.x2 / s, o.box.y2 / s)
            let cx = x1 + cfg.centerX * (x2 - x1), cy = y1 + cfg.centerY * (y2 - y1)
            let sx = cfg.centerX < 0.5 ? cx - x1 : x2 - cx, sy = cfg.centerY < 0.5 ? cy - y1 : y2 - cy
            var csx = max(cfg.radiusX * sx, 0.1), csy = max(cfg.radiusY * sy, 0.1)
            if csx < cfg.minRadius { (csx, csy) = (cfg.minRadius, cfg.minRadius * csy / csx) }
            if csy < cfg.minRadius { (csx, csy) = (cfg.minRadius * csx / csy, cfg.minRadius) }
            let dsx = max((1 - deadzone) * csx + deadzone * sx, csx), dsy = max((1 - deadzone) * csy + deadzone * sy, csy)
            let weight = Float(1 / max(csx * csy * 4, 1))
            let rows = max(0, Int((cy - dsy).rounded(.down)))...min(h - 1, Int((cy + dsy).rounded(.up)))
            let cols = max(0, Int((cx - dsx).rounded(.down)))...min(w - 1, Int((cx + dsx).rounded(.up)))
            guard !rows.isEmpty, !cols.isEmpty else { continue }
            for i in rows {
                for j in cols {
                    let (px, py) = (Double(j) + 0.5, Double(i) + 0.5)
                    let (u, v) = ((px - cx) / dsx, (py - cy) / dsy)
                    guard u * u + v * v <= 1 else { continue }
                    let cell = (c * h + i) * w + j
                    let (cu, cv) = ((px - cx) / csx, (py - cy) / csy)
                    if cu * cu + cv * cv <= 1 {
                        coverage[cell] = 1
                        boxWeight[cell] = weight
                        let e = grid.encode(o.box, row: i, column: j)
                        for k in 0..<4 { boxes[((4 * c + k) * h + i) * w + j] = Float(e[k]) }
                    } else {
                        coverage[cell] = 0
                        boxWeight[cell] = 0
                        for k in 0..<4 { boxes[((4 * c + k) * h + i) * w + j] = 0 }
                    }
                }
            }
        }
    }
}
