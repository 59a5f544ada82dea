import Foundation

/// ONNX's Resize of height and width in full: nearest (four rounding modes), linear or cubic
/// interpolation, each coordinate transformation ONNX defines but crop-and-resize, any output size.
/// Each output row (column) reads a few input rows (columns) with weights (`taps`), along height
/// then width; outside the input the edge repeats (or, with `excludeOutside`, the weights that
/// fall outside are dropped and the rest renormalized).
public struct Resize: Hashable, Sendable, Codable {
    public enum Mode: String, Hashable, Sendable, Codable { case nearest, linear, cubic }
    public var mode: Mode
    /// ONNX's coordinate_transformation_mode: half_pixel, pytorch_half_pixel, align_corners,
    /// asymmetric or tf_half_pixel_for_nn.
    public var coordinates: String
    /// ONNX's nearest_mode: round_prefer_floor, round_prefer_ceil, floor or ceil.
    public var rounding: String
    /// Cubic's coefficient a.
    public var cubicA: Float
    public var excludeOutside: Bool
    /// Output height and width.
    public var size: [Int]
    /// The scales the coordinates are transformed with (the given ones, or output / input).
    public var scale: [Float]

    public static let coordinateModes = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
    public static let roundingModes = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]

    public init(mode: Mode, coordinates: String, rounding: String = "round_prefer_floor", cubicA: Float = -0.75, excludeOutside: Bool = false,
                size: [Int], scale: [Float]) {
        self.mode = mode; self.coordinates = coordinates; self.rounding = rounding; self.cubicA = cubicA
        self.excludeOutside = excludeOutside; self.size = size; self.scale = scale
    }

    /// For each of `output` positions along an axis of `input`: the input positions it reads and
    /// their weights (ONNX's reference computation, in Double).
    public func taps(input: Int, output: Int, axis: Int) -> [(index: [Int], weight: [Double])] {
        let s = Double(scale[axis])
        return (0..<output).map { o in
            let x = Double(o)
            let original: Double = switch coordinates {
            case "align_corners": s * Double(input) == 1 ? 0 : x * Double(input - 1) / (s * Double(input) - 1)
            case "asymmetric": x / s
            case "pytorch_half_pixel": output > 1 ? (x + 0.5) / s - 0.5 : -0.5
            case "tf_half_pixel_for_nn": (x + 0.5) / s
            default: (x + 0.5) / s - 0.5
            }
            let base = original.rounded(.down), ratio = original - base
            var index: [Int], weight: [Double]
            switch mode {
            case .nearest:
                let up: Bool
                switch rounding {
                case _ where ratio == 0: up = false
                case "round_prefer_ceil": up = ratio >= 0.5
                case "floor": up = false
                case "ceil": up = true
                default: up = ratio > 0.5
                }
                index = [Int(base) + (up ? 1 : 0)]; weight = [1]
            case .linear:
                index = [Int(base), Int(base) + 1]; weight = [1 - ratio, ratio]
            case .cubic:
                let a = Double(cubicA), r = ratio
                index = (-1...2).map { Int(base) + $0 }
                weight = [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                          ((a + 2) * r - (a + 3)) * r * r + 1,
                          ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                          ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a]
            }
            if excludeOutside {
                let inside = index.map { $0 >= 0 && $0 < input }
                let total = zip(weight, inside).filter(\.1).map(\.0).reduce(0, +)
                weight = zip(weight, inside).map { w, ok in ok && total != 0 ? w / total : 0 }
            }
            return (index.map { min(max($0, 0), input - 1) }, weight)
        }
    }
}
