import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoReport

/// The results folder's plots, each written as NAME.png and NAME.svg (the SVG for print, its text
/// searchable), atomically.
enum Plots {
    static func write(_ figure: Figure, to base: String) throws {
        try AtomicFile.write(Data(try figure.png()), to: base + ".png")
        try AtomicFile.write(Data(figure.svg()), to: base + ".svg")
    }

    /// A metric per epoch: training and validation series (validation dashed), gaps where an epoch has no value.
    static func history(title: String, yLabel: String, _ series: [(name: String, values: [Double])], percent: Bool = false) -> LineChart {
        var chart = LineChart(title: title, xLabel: "epoch", yLabel: yLabel, series: series.enumerated().map { i, s in
            LineChart.Series(name: s.name, values: s.values, color: RGB.series(i))
        })
        chart.percent = percent
        chart.integerX = true
        return chart
    }

    /// The learning rate per epoch, on a log scale when it spans more than a factor of 20.
    static func learningRate(title: String, _ values: [Double]) -> LineChart {
        var chart = LineChart(title: title, xLabel: "epoch", yLabel: "learning rate (last step of the epoch)",
                              series: [LineChart.Series(name: "learning rate", values: values, color: RGB.series(0))])
        chart.integerX = true
        let positive = values.filter { $0 > 0 && $0.isFinite }
        if let lo = positive.min(), let hi = positive.max(), hi / lo > 20 { chart.logY = true }
        return chart
    }

    /// Precision against recall per class, each class's AP in its legend entry.
    static func precisionRecall(title: String, classes: [String], _ aps: [ClassAP]) -> LineChart {
        var chart = LineChart(title: title, xLabel: "recall", yLabel: "precision", series: zip(classes, aps).enumerated().map { i, pair in
            let (name, a) = pair
            return LineChart.Series(name: name + (a.ap.map { String(format: " (AP %.1f%%)", 100 * $0) } ?? " (no ground truth)"),
                                    points: zip(a.recall, a.precision).map { Point($0, $1) }, color: RGB.series(i))
        })
        chart.xRange = 0...1.0
        chart.yRange = 0...1.02
        chart.width = 820
        return chart
    }

    /// Precision, recall and F1 per class, from a confusion matrix.
    static func perClass(title: String, classes: [String], _ m: [(precision: Double, recall: Double, f1: Double)]) -> BarChart {
        BarChart(title: title, yLabel: "score", groups: classes,
                 series: [("precision", m.map(\.precision)), ("recall", m.map(\.recall)), ("F1", m.map(\.f1))])
    }
}

/// The run's name in plot titles: its results folder's last component.
func runName(_ dir: String) -> String {
    let name = (dir as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? dir
    return name.isEmpty ? dir : name
}

extension ClassAP {
    /// TensorBoard's PR-curve counts at `thresholds` evenly spaced score thresholds in 0…1 (a
    /// detection counts at threshold t when its score is at least t; detection has no true negatives).
    func thresholdCounts(_ thresholds: Int) -> (tp: [Double], fp: [Double], tn: [Double], fn: [Double]) {
        var tp: [Double] = [], fp: [Double] = []
        for i in 0..<thresholds {
            let t = Double(i) / Double(thresholds - 1)
            // scores are descending: the detections at or above t are a prefix.
            var k = 0
            while k < scores.count, scores[k] >= t { k += 1 }
            let hits = k == 0 ? 0 : (precision[k - 1] * Double(k)).rounded()
            tp.append(hits); fp.append(Double(k) - hits)
        }
        return (tp, fp, [Double](repeating: 0, count: thresholds), tp.map { Double(groundTruth) - $0 })
    }
}

/// Each class's PR curve as TensorBoard's pr_curves plugin shows it, under PREFIX/pr_CLASS.
func writePRCurves(_ perClass: [(name: String, ap: ClassAP)], prefix: String, to events: EventWriter, step: Int) throws {
    for (name, a) in perClass {
        let c = a.thresholdCounts(51)
        try events.prCurve("\(prefix)/pr_\(name)", truePositives: c.tp, falsePositives: c.fp, trueNegatives: c.tn, falseNegatives: c.fn, step: step)
    }
}
