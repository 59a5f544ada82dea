import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TaoData
import XCTest
@testable import TaoReport

/// The texts of an SVG document's `<text>` elements, read back with an XML parser (so the file is
/// well-formed XML too).
final class SVGTexts: NSObject, XMLParserDelegate {
    var texts: [String] = []
    private var current: String?
    static func read(_ bytes: [UInt8]) throws -> [String] {
        let p = XMLParser(data: Data(bytes)), d = SVGTexts()
        p.delegate = d
        guard p.parse() else { throw BadSVG(description: "not well-formed XML: \(p.parserError.map { "\($0)" } ?? "?")") }
        return d.texts
    }
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if name == "text" { current = "" }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current? += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text", let c = current { texts.append(c); current = nil }
    }
}

struct BadSVG: Error, CustomStringConvertible { var description: String }

/// Pixels of a PNG, for checks on what was drawn.
struct Pixels {
    let image: Image
    init(_ png: [UInt8]) throws { image = try ImageCodec.decode(png, name: "figure.png", channels: 3) }
    func at(_ x: Int, _ y: Int) -> RGB { let p = (y * image.width + x) * 3; return RGB(image.pixels[p], image.pixels[p + 1], image.pixels[p + 2]) }
    /// Pixels within `tolerance` of `color` in the region (x0..<x1, y0..<y1).
    func count(_ color: RGB, tolerance: Int = 12, x: Range<Int>? = nil, y: Range<Int>? = nil) -> Int {
        var n = 0
        for yy in y ?? 0..<image.height { for xx in x ?? 0..<image.width {
            let c = at(xx, yy)
            if abs(Int(c.r) - Int(color.r)) <= tolerance && abs(Int(c.g) - Int(color.g)) <= tolerance && abs(Int(c.b) - Int(color.b)) <= tolerance { n += 1 }
        } }
        return n
    }
    /// Pixels darker than mid-grey in the region (drawn text and lines on white).
    func dark(x: Range<Int>, y: Range<Int>) -> Int {
        var n = 0
        for yy in y { for xx in x { let c = at(xx, yy); if Int(c.r) + Int(c.g) + Int(c.b) < 3 * 110 { n += 1 } } }
        return n
    }
}

final class ChartTests: XCTestCase {
    static let outDir: String = {
        let d = NSTemporaryDirectory() + "tao-report-tests"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func save(_ name: String, _ bytes: [UInt8]) { FileManager.default.createFile(atPath: "\(Self.outDir)/\(name)", contents: Data(bytes)) }

    func testTicksAreRoundNumbersCoveringTheRange() {
        XCTAssertEqual(Ticks.step(0.93), 0.2)
        XCTAssertEqual(Ticks.step(7), 2)
        XCTAssertEqual(Ticks.step(0.0004), 0.0001, accuracy: 1e-12)
        XCTAssertEqual(Ticks.step(3, count: 8, integer: true), 1)
        XCTAssertEqual(Ticks.values(0.05, 0.95, step: 0.2).map { ($0 * 10).rounded() / 10 }, [0.2, 0.4, 0.6, 0.8])
        XCTAssertEqual(Ticks.label(0.8, step: 0.2, percent: true), "80%")
        XCTAssertEqual(Ticks.label(0.25, step: 0.05, percent: false), "0.25")
    }

    func testLineChartHasTitleAxisLabelsAndLegendInBothFormats() throws {
        let train = [2.3, 1.4, 0.9, 0.7, 0.61, 0.55], val = [2.1, 1.5, 1.0, .nan, 0.8, 0.78]
        let chart = LineChart(title: "Loss per epoch: demo", xLabel: "epoch", yLabel: "loss", series: [
            .init(name: "training loss", values: train, color: RGB.series(0)),
            .init(name: "validation loss", values: val, color: RGB.series(1)),
        ])
        var integer = chart
        integer.integerX = true
        let svg = integer.svg(), png = try integer.png()
        save("loss.svg", svg); save("loss.png", png)
        let texts = try SVGTexts.read(svg)
        for t in ["Loss per epoch: demo", "epoch", "loss", "training loss", "validation loss", "1", "6"] { XCTAssertTrue(texts.contains(t), "no '\(t)' in \(texts)") }
        // Integer epochs: no tick labelled 1.5.
        XCTAssertFalse(texts.contains("3.5") || texts.contains("4.5"), "\(texts)")
        let px = try Pixels(png)
        XCTAssertEqual(px.image.width, integer.width)
        // Both curves are drawn in their colours, and the legend (right of the plot) shows both.
        let f = Frame(width: integer.width, height: integer.height, yTickLabels: ["0.5"], legend: ["validation loss"])
        let legend = Int(f.plot.x + f.plot.width)..<integer.width
        XCTAssertGreaterThan(px.count(RGB.series(0)), 300)
        XCTAssertGreaterThan(px.count(RGB.series(1)), 200)
        XCTAssertGreaterThan(px.count(RGB.series(0), x: legend), 20)
        XCTAssertGreaterThan(px.count(RGB.series(1), x: legend), 20)
        // Text is rendered (a font is installed and used): dark pixels where the title is.
        XCTAssertGreaterThan(px.dark(x: integer.width / 2 - 60..<integer.width / 2 + 60, y: 8..<30), 80)
    }

    func testLogScaleAndGapsAreDrawnWithoutNonFiniteCoordinates() throws {
        var chart = LineChart(title: "Learning rate", xLabel: "epoch", yLabel: "learning rate", series: [
            .init(name: "learning rate", values: [5e-6, 5e-5, 5e-4, 5e-4, .infinity, 1e-5], color: RGB.series(0)),
        ])
        chart.logY = true
        let svg = String(decoding: chart.svg(), as: UTF8.self)
        XCTAssertFalse(svg.contains("nan") || svg.contains("inf"), "non-finite coordinates written")
        let texts = try SVGTexts.read(Array(svg.utf8))
        XCTAssertTrue(texts.contains("1e-05") && texts.contains("0.0001"), "decade ticks: \(texts)")
        _ = try chart.png()
    }

    func testConfusionChartNamesEveryClassAndShadesByRowShare() throws {
        let classes = ["T-shirt/top", "Trouser", "Pullover", "Dress"]
        let counts = [[90, 0, 8, 2], [1, 97, 0, 2], [12, 0, 80, 8], [5, 3, 2, 90]]
        let chart = ConfusionChart(title: "Confusion matrix: demo", classes: classes, counts: counts)
        let svg = chart.svg(), png = try chart.png()
        save("confusion.svg", svg); save("confusion.png", png)
        let texts = try SVGTexts.read(svg)
        for c in classes { XCTAssertEqual(texts.filter { $0 == c }.count, 2, "\(c): on both axes") }
        for t in ["90", "97", "80", "12", "0.12", "0.90", "predicted class", "true class"] { XCTAssertTrue(texts.contains(t), "no '\(t)'") }
        // The diagonal cell of a row is darker than an off-diagonal one with fewer samples.
        let px = try Pixels(png)
        let x0 = 60 + chart.labelWidth + 10
        func cell(_ r: Int, _ k: Int) -> RGB { px.at(Int(x0 + (Double(k) + 0.1) * chart.cell), Int(50 + (Double(r) + 0.1) * chart.cell)) }
        XCTAssertLessThan(cell(1, 1).luminance, cell(1, 0).luminance)
        XCTAssertLessThan(cell(2, 0).luminance, cell(2, 1).luminance)
        XCTAssertEqual(cell(1, 2), RGB.white, "a zero count stays white")
    }

    func testBarChartLabelsGroupsAndSeries() throws {
        let chart = BarChart(title: "Per class", yLabel: "score", groups: ["top", "bottom", "a much longer class name"],
                             series: [("precision", [0.9, 0.5, 1]), ("recall", [0.8, 0.4, 0.2])])
        let svg = chart.svg(), png = try chart.png()
        save("bars.png", png)
        let texts = try SVGTexts.read(svg)
        for t in ["Per class", "score", "top", "bottom", "a much longer class name", "precision", "recall", "100%"] { XCTAssertTrue(texts.contains(t), "no '\(t)'") }
        let px = try Pixels(png)
        XCTAssertGreaterThan(px.count(RGB.series(0)), px.count(RGB.series(1)), "precision bars are taller in sum")
    }

    func testAnnotatorOutlinesBoxesAndLabelsThemOnTheImage() throws {
        let w = 200, h = 120
        let grey = Image(width: w, height: h, channels: 1, pixels: [UInt8](repeating: 128, count: w * h))
        let red = RGB(230, 20, 20)
        let out = Annotator.draw(grey, [BoxMark(x1: 50, y1: 40, x2: 150, y2: 100, label: "car 0.93", color: red)], lineWidth: 2)
        XCTAssertEqual(out.channels, 3)
        save("annotated.png", try ImageCodec.encodePNG(out))
        let px = try Pixels(try ImageCodec.encodePNG(out))
        // The outline: every edge red at its middle; inside and far outside untouched.
        for (x, y) in [(100, 40), (100, 99), (50, 70), (149, 70)] { XCTAssertEqual(px.count(red, x: x - 1..<x + 2, y: y - 1..<y + 2) > 0, true, "edge at \(x),\(y)") }
        XCTAssertEqual(px.at(100, 70), RGB(128, 128, 128))
        XCTAssertEqual(px.at(10, 10), RGB(128, 128, 128))
        // The tag above the box: red, with white text on it.
        let tag = (x: 49..<110, y: 24..<39)
        XCTAssertGreaterThan(px.count(red, x: tag.x, y: tag.y), 150)
        XCTAssertGreaterThan(px.count(RGB.white, tolerance: 40, x: tag.x, y: tag.y), 20)
        // A box at the top edge gets its tag inside.
        let top = Annotator.draw(grey, [BoxMark(x1: 20, y1: 0, x2: 90, y2: 50, label: "bag 0.50", color: red)])
        let tp = try Pixels(try ImageCodec.encodePNG(top))
        XCTAssertGreaterThan(tp.count(red, x: 20..<60, y: 2..<14), 150)
    }

    func testContactSheetPlacesEveryImageWithItsCaption() throws {
        let white = Image(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 255, count: 28 * 28))
        let black = Image(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 0, count: 28 * 28))
        let sheet = Annotator.sheet([(black, "Bag 0.99", RGB(20, 140, 40)), (white, "Shirt 0.40\ntrue: T-shirt", RGB(200, 30, 30)), (black, "Coat", RGB(20, 140, 40))],
                                    columns: 2, cell: 56)
        XCTAssertEqual(sheet.width, 2 * (56 + 8) + 8)
        XCTAssertEqual(sheet.height, 2 * (56 + (2 * 16 + 4) + 10) + 8, "rows as tall as the image and two caption lines")
        let px = try Pixels(try ImageCodec.encodePNG(sheet))
        XCTAssertEqual(px.at(8 + 28, 8 + 28), RGB.black, "first image, enlarged to the cell")
        XCTAssertEqual(px.at(8 + 64 + 28, 8 + 28), RGB.white)
        XCTAssertGreaterThan(px.count(RGB(200, 30, 30), tolerance: 60, x: 72..<136, y: 8 + 56 + 20..<8 + 56 + 36), 10, "the second line of the red caption")
    }
}
