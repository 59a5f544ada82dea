import Foundation
import TaoData
import TaoGraph
import TaoMetrics
import TaoReport

extension DetectionEvaluation {
    /// What every detector's `evaluate` leaves: the log's summary and per-class table, the PR curves
    /// (plots/pr_curves.png and TensorBoard), evaluation.json and the results summary.
    func report(to results: Results, resultsDir: String, model: String, card: ModelCard, engine: String, data: String, seconds: Double,
                apMode: String, overlap: String) throws {
        results.log(String(format: "evaluated %@%@ on %d %@ frames in %.1f s: mAP %.2f%% (%@, %@)", model, engine, images, data,
                           seconds, 100 * mAP, apMode == "integrate" ? "INTEGRATE" : "SAMPLE, 11 points", overlap))
        let width = max(10, classes.map(\.count).max() ?? 0)
        results.log("class".padding(toLength: width, withPad: " ", startingAt: 0) + "      AP  ground truth  true pos  false pos")
        for (name, a) in zip(classes, perClass) {
            results.log(name.padding(toLength: width, withPad: " ", startingAt: 0)
                        + (a.ap.map { String(format: "  %5.2f%%", 100 * $0) } ?? "       -") + String(format: "  %12d  %8d  %9d", a.groundTruth, a.truePositives, a.falsePositives))
        }
        try Plots.write(Plots.precisionRecall(title: String(format: "Precision-recall: %@ (mAP %.1f%%)", runName(resultsDir), 100 * mAP), classes: classes, perClass),
                        to: "\(resultsDir)/plots/pr_curves")
        let events = try results.events(), step = card.epoch ?? 0
        try events.scalars([("evaluate/mAP", mAP)] + zip(classes, perClass).compactMap { n, a in a.ap.map { ("evaluate/AP_\(n)", $0) } }, step: step)
        try writePRCurves(zip(classes, perClass).map { ($0, $1) }, prefix: "evaluate", to: events, step: step)
        try results.writeJSON("evaluation.json", [
            "model": model, "frames": images, "data": data, "mAP": mAP, "ap_mode": apMode,
            "per_class": zip(classes, perClass).map { name, a -> [String: Any] in
                ["class": name, "ap": a.ap ?? NSNull(), "ground_truth": a.groundTruth, "true_positives": a.truePositives,
                 "false_positives": a.falsePositives, "precision": a.precision, "recall": a.recall]
            },
        ])
        try results.writeSummary()
    }
}

extension DetectedObject {
    /// Writes one image's detections as `inference` leaves them: `labels/STEM.txt` (KITTI lines, the
    /// score in the 16th column) and `images_annotated/NAME` (the boxes drawn in `colors`).
    static func write(_ objects: [DetectedObject], colors: [RGB], image: Image, path: String, outputDir: String,
                      labels: Bool, annotated: Bool, lineWidth: Double = 2, labelsDir: String? = nil, imagesDir: String? = nil) throws {
        let name = (path as NSString).lastPathComponent, stem = (name as NSString).deletingPathExtension
        if labels {
            let lines = objects.map { o in
                String(format: "%@ 0.00 0 0.00 %.2f %.2f %.2f %.2f 0.00 0.00 0.00 0.00 0.00 0.00 0.00 %.5f", o.className, o.box.x1, o.box.y1, o.box.x2, o.box.y2, o.score)
            }
            try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: "\(labelsDir ?? "\(outputDir)/labels")/\(stem).txt")
        }
        if annotated {
            let marks = zip(objects, colors).map { o, color in
                BoxMark(x1: o.box.x1, y1: o.box.y1, x2: o.box.x2, y2: o.box.y2, label: String(format: "%@ %.2f", o.className, o.score), color: color)
            }
            let drawn = Annotator.draw(image, marks, lineWidth: lineWidth)
            let jpeg = ["jpg", "jpeg"].contains((name as NSString).pathExtension.lowercased())
            try AtomicFile.write(Data(jpeg ? try ImageCodec.encodeJPEG(drawn) : try ImageCodec.encodePNG(drawn)), to: "\(imagesDir ?? "\(outputDir)/images_annotated")/\(name)")
        }
    }
}
