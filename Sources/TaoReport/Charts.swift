import Foundation

/// Tick positions for an axis: 1, 2 or 5 times a power of ten, about `count` of them.
enum Ticks {
    static func step(_ span: Double, count: Int = 5, integer: Bool = false) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let raw = span / Double(max(1, count))
        let p = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
        return integer ? max(1, step.rounded(.up)) : step
    }

    static func values(_ lo: Double, _ hi: Double, step: Double) -> [Double] {
        var out: [Double] = []
        var v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-9 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    /// A tick label with as many decimals as the step needs.
    static func label(_ v: Double, step: Double, percent: Bool) -> String {
        let shown = percent ? v * 100 : v, s = percent ? step * 100 : step
        let decimals = max(0, min(6, Int((-log10(s)).rounded(.up))))
        if !percent, s < 1e-3 || abs(v) >= 1e5 { return String(format: "%.3g", v) }
        return String(format: "%.\(decimals)f", shown) + (percent ? "%" : "")
    }
}

/// Fonts every chart uses.
enum Style {
    static let title = Font(size: 15, bold: true)
    static let label = Font(size: 12.5)
    static let tick = Font(size: 11)
    static let legend = Font(size: 11.5)
}

/// A title above, axis labels, and a legend to the right of the plot area (never over the data).
struct Frame {
    let width: Double, height: Double
    let plot: Rect

    init(width: Int, height: Int, yTickLabels: [String], legend: [String], xLabelRows: Double = 1) {
        self.width = Double(width); self.height = Double(height)
        let tickWidth = yTickLabels.map { TextMetrics.width($0, font: Style.tick) }.max() ?? 20
        let legendWidth = legend.isEmpty ? 0 : (legend.map { TextMetrics.width($0, font: Style.legend) }.max() ?? 0) + 44
        let left = 30 + tickWidth + 12, top = 40.0
        let right = 16 + legendWidth, bottom = 28 + 18 * xLabelRows
        plot = Rect(left, top, Double(width) - left - right, Double(height) - top - bottom)
    }

    func decorate(_ c: Canvas, title: String, xLabel: String, yLabel: String) {
        c.text(title, at: Point(width / 2, 24), font: Style.title, anchor: .middle)
        c.text(xLabel, at: Point(plot.x + plot.width / 2, height - 10), font: Style.label, anchor: .middle)
        c.text(yLabel, at: Point(16, plot.y + plot.height / 2), font: Style.label, color: RGB.text, anchor: .middle, middle: true, rotation: -90)
    }

    /// The legend's entries, top right outside the plot, each a short line (or box) in its colour.
    func legend(_ c: Canvas, _ entries: [(name: String, color: RGB, dashed: Bool)], box: Bool = false) {
        let x = plot.x + plot.width + 14
        for (i, e) in entries.enumerated() {
            let y = plot.y + 8 + Double(i) * 18
            if box { c.fill(Rect(x, y - 6, 22, 12), color: e.color, alpha: 1) } else {
                c.line(Point(x, y), Point(x + 22, y), color: e.color, width: 2.2, dash: e.dashed ? [5, 3] : [])
            }
            c.text(e.name, at: Point(x + 28, y), font: Style.legend, anchor: .start, middle: true)
        }
    }
}

/// Curves of y over x with a title, axis labels, ticks, grid and a legend: loss and metrics per
/// epoch, the learning rate, precision-recall curves. Non-finite values are gaps.
public struct LineChart: Figure {
    public struct Series {
        public var name: String
        public var points: [Point]
        public var color: RGB
        public var dashed: Bool
        public init(name: String, points: [Point], color: RGB, dashed: Bool = false) {
            self.name = name; self.points = points; self.color = color; self.dashed = dashed
        }
        /// Values at x = 1, 2, … (epochs).
        public init(name: String, values: [Double], color: RGB, dashed: Bool = false) {
            self.init(name: name, points: values.enumerated().map { Point(Double($0.offset + 1), $0.element) }, color: color, dashed: dashed)
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    public var percent = false
    public var integerX = false
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var logY = false
    public var width = 760, height = 440

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    private func finite(_ p: Point) -> Bool { p.x.isFinite && p.y.isFinite && (!logY || p.y > 0) }

    /// The data's extent, padded by 5% (or the ranges given).
    private func ranges() -> (ClosedRange<Double>, ClosedRange<Double>) {
        let pts = series.flatMap(\.points).filter(finite)
        func padded(_ vs: [Double], _ fixed: ClosedRange<Double>?) -> ClosedRange<Double> {
            if let f = fixed { return f }
            guard let lo = vs.min(), let hi = vs.max() else { return 0...1 }
            let pad = hi > lo ? (hi - lo) * 0.05 : max(abs(lo) * 0.05, 0.5)
            return (lo - pad)...(hi + pad)
        }
        let x = integerX && xRange == nil ? {
            let xs = pts.map(\.x)
            return (xs.min() ?? 1) - 0.3 ... max((xs.max() ?? 1) + 0.3, (xs.min() ?? 1) + 0.7)
        }() : padded(pts.map(\.x), xRange)
        let y = padded(pts.map { logY ? log10($0.y) : $0.y }, yRange.map { logY ? log10($0.lowerBound)...log10($0.upperBound) : $0 })
        return (x, y)
    }

    public func draw(on c: Canvas) {
        let (xr, yr) = ranges()
        let ystep = logY ? 1 : Ticks.step(yr.upperBound - yr.lowerBound, count: 6)
        let yticks = logY ? Ticks.values(yr.lowerBound.rounded(.down), yr.upperBound, step: 1).filter { yr.contains($0) }
                          : Ticks.values(yr.lowerBound, yr.upperBound, step: ystep)
        let ylabels = yticks.map { logY ? String(format: "%g", pow(10, $0)) : Ticks.label($0, step: ystep, percent: percent) }
        let f = Frame(width: width, height: height, yTickLabels: ylabels, legend: series.map(\.name))
        let p = f.plot
        func px(_ x: Double) -> Double { p.x + (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * p.width }
        func py(_ y: Double) -> Double { p.y + p.height - ((logY ? log10(y) : y) - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * p.height }
        func pyRaw(_ t: Double) -> Double { p.y + p.height - (t - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * p.height }

        for (t, label) in zip(yticks, ylabels) {
            c.line(Point(p.x, pyRaw(t)), Point(p.x + p.width, pyRaw(t)), color: RGB.grid)
            c.text(label, at: Point(p.x - 6, pyRaw(t)), font: Style.tick, anchor: .end, middle: true)
        }
        let xstep = Ticks.step(xr.upperBound - xr.lowerBound, count: 8, integer: integerX)
        for t in Ticks.values(xr.lowerBound, xr.upperBound, step: xstep) {
            c.line(Point(px(t), p.y), Point(px(t), p.y + p.height), color: RGB.grid)
            c.line(Point(px(t), p.y + p.height), Point(px(t), p.y + p.height + 4), color: RGB.axis)
            c.text(integerX ? String(Int(t)) : Ticks.label(t, step: xstep, percent: false), at: Point(px(t), p.y + p.height + 17), font: Style.tick, anchor: .middle)
        }
        c.stroke(p, color: RGB.axis, width: 1)

        for s in series {
            var run: [Point] = []
            func flush() {
                if run.count > 1 { c.polyline(run, color: s.color, width: 2, dash: s.dashed ? [6, 4] : []) }
                run = []
            }
            for q in s.points {
                if finite(q) { run.append(Point(px(q.x), py(q.y))) } else { flush() }
            }
            flush()
            let shown = s.points.filter(finite)
            if shown.count <= 40 { for q in shown { c.dot(Point(px(q.x), py(q.y)), radius: 2.8, color: s.color) } }
        }
        f.decorate(c, title: title, xLabel: xLabel, yLabel: yLabel)
        f.legend(c, series.map { ($0.name, $0.color, $0.dashed) })
    }
}

/// A confusion matrix with the class names on both axes: each cell's count, shaded by its share of
/// the true class's samples (row-normalized), with that share written under the count when it fits.
public struct ConfusionChart: Figure {
    public var title: String
    public var classes: [String]
    public var counts: [[Int]]
    public let width: Int, height: Int
    let cell: Double, labelWidth: Double, rotate: Bool

    public init(title: String, classes: [String], counts: [[Int]]) {
        self.title = title; self.classes = classes; self.counts = counts
        let n = max(1, classes.count)
        cell = max(16, min(64, 640 / Double(n)))
        labelWidth = (classes.map { TextMetrics.width($0, font: Style.tick) }.max() ?? 20)
        rotate = labelWidth > cell - 4
        let bottom = (rotate ? labelWidth * 0.75 + 20 : 24) + 30
        width = Int(60 + labelWidth + 10 + cell * Double(n) + 30)
        height = Int(50 + cell * Double(n) + bottom)
    }

    public func draw(on c: Canvas) {
        let n = classes.count
        let x0 = 60 + labelWidth + 10, y0 = 50.0
        let valueFont = Font(size: min(13, cell * 0.3)), shareFont = Font(size: min(10.5, cell * 0.22))
        for r in 0..<n {
            let total = max(1, counts[r].reduce(0, +))
            for k in 0..<n {
                let v = counts[r][k], share = Double(v) / Double(total)
                // White to dark blue by share; errors get the same scale, so a 10% confusion reads as 10%.
                let color = RGB(UInt8(255 - 222 * share), UInt8(255 - 170 * share), UInt8(255 - 75 * share))
                let rect = Rect(x0 + Double(k) * cell, y0 + Double(r) * cell, cell, cell)
                c.fill(rect, color: color, alpha: 1)
                let ink = color.luminance < 0.5 ? RGB.white : RGB.text
                let cx = rect.x + cell / 2
                if cell >= 40 {
                    c.text("\(v)", at: Point(cx, rect.y + cell * 0.42), font: valueFont, color: ink, anchor: .middle, middle: true)
                    c.text(String(format: "%.2f", share), at: Point(cx, rect.y + cell * 0.72), font: shareFont, color: ink, anchor: .middle, middle: true)
                } else if TextMetrics.width("\(v)", font: valueFont) < cell - 2 {
                    c.text("\(v)", at: Point(cx, rect.y + cell / 2), font: valueFont, color: ink, anchor: .middle, middle: true)
                }
            }
        }
        c.stroke(Rect(x0, y0, cell * Double(n), cell * Double(n)), color: RGB.axis, width: 1)
        for (i, name) in classes.enumerated() {
            let mid = Double(i) * cell + cell / 2
            c.text(name, at: Point(x0 - 6, y0 + mid), font: Style.tick, anchor: .end, middle: true)
            if rotate {
                c.text(name, at: Point(x0 + mid, y0 + cell * Double(n) + 8), font: Style.tick, color: RGB.text, anchor: .end, middle: true, rotation: -45)
            } else {
                c.text(name, at: Point(x0 + mid, y0 + cell * Double(n) + 16), font: Style.tick, anchor: .middle)
            }
        }
        c.text(title, at: Point(Double(width) / 2, 26), font: Style.title, anchor: .middle)
        c.text("predicted class", at: Point(x0 + cell * Double(n) / 2, Double(height) - 10), font: Style.label, anchor: .middle)
        c.text("true class", at: Point(18, y0 + cell * Double(n) / 2), font: Style.label, color: RGB.text, anchor: .middle, middle: true, rotation: -90)
    }
}

/// Grouped bars on 0…1: e.g. precision, recall and F1 for each class.
public struct BarChart: Figure {
    public var title: String, yLabel: String
    public var groups: [String]
    public var series: [(name: String, values: [Double])]
    public var percent = true
    public let width: Int, height: Int
    let rotate: Bool, labelDepth: Double

    public init(title: String, yLabel: String, groups: [String], series: [(name: String, values: [Double])]) {
        self.title = title; self.yLabel = yLabel; self.groups = groups; self.series = series
        let perGroup = max(54.0, Double(series.count) * 16 + 18)
        width = Int(max(560, 140 + perGroup * Double(groups.count) + 120))
        let widest = groups.map { TextMetrics.width($0, font: Style.tick) }.max() ?? 0
        rotate = widest > perGroup - 6
        labelDepth = rotate ? widest * 0.7 : 0
        height = 440 + Int(labelDepth)
    }

    public func draw(on c: Canvas) {
        let ticks = Ticks.values(0, 1, step: 0.2)
        let labels = ticks.map { Ticks.label($0, step: 0.2, percent: percent) }
        let f = Frame(width: width, height: height, yTickLabels: labels, legend: series.map(\.name), xLabelRows: 1 + labelDepth / 18)
        let p = f.plot
        func py(_ v: Double) -> Double { p.y + p.height * (1 - min(1, max(0, v))) }
        for (t, l) in zip(ticks, labels) {
            c.line(Point(p.x, py(t)), Point(p.x + p.width, py(t)), color: RGB.grid)
            c.text(l, at: Point(p.x - 6, py(t)), font: Style.tick, anchor: .end, middle: true)
        }
        let groupWidth = p.width / Double(max(1, groups.count))
        let bar = min(16, (groupWidth - 12) / Double(max(1, series.count)))
        for (g, name) in groups.enumerated() {
            let gx = p.x + Double(g) * groupWidth + (groupWidth - bar * Double(series.count)) / 2
            for (k, s) in series.enumerated() where g < s.values.count && s.values[g].isFinite {
                let v = s.values[g]
                c.fill(Rect(gx + Double(k) * bar, py(v), bar - 1, p.y + p.height - py(v)), color: RGB.series(k), alpha: 1)
            }
            let mid = p.x + (Double(g) + 0.5) * groupWidth
            if rotate {
                c.text(name, at: Point(mid, p.y + p.height + 8), font: Style.tick, color: RGB.text, anchor: .end, middle: true, rotation: -45)
            } else {
                c.text(name, at: Point(mid, p.y + p.height + 17), font: Style.tick, anchor: .middle)
            }
        }
        c.stroke(p, color: RGB.axis, width: 1)
        f.decorate(c, title: title, xLabel: "", yLabel: yLabel)
        f.legend(c, series.enumerated().map { ($1.name, RGB.series($0), false) }, box: true)
    }
}
