/// TAO's YOLO specs hold anchor shapes as Python literals in strings, which TAO evaluates
/// (`big_anchor_shape: "[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]"`). This reads that
/// subset of Python: a list or tuple of (width, height) pairs (lists or tuples themselves), numbers
/// as Python writes them, a trailing comma allowed; anything else is an error that names the field
/// and the character where reading stopped.
public enum AnchorShapes {
    public struct Shape: Sendable, Equatable {
        public var width, height: Double
        public init(width: Double, height: Double) { self.width = width; self.height = height }
    }

    /// The pairs of `text`, the value of `field` at `line` of `file`; every width and height must be above 0.
    public static func parse(_ text: String, field: String, file: String, line: Int? = nil) throws -> [Shape] {
        var p = Reader(chars: Array(text.unicodeScalars), field: field, file: file, line: line, text: text)
        let items = try p.sequence { p in try p.sequence { p in try p.number() } }
        p.skipSpace()
        guard p.at == p.chars.count else { throw p.fail("unexpected text after the list") }
        guard !items.isEmpty else { throw p.fail("no anchor shapes (expected a list of (width, height) pairs)", atEnd: false) }
        return try items.enumerated().map { k, pair in
            guard pair.count == 2 else { throw p.fail("anchor \(k + 1) has \(pair.count) numbers, not a (width, height) pair", atEnd: false) }
            guard pair[0] > 0, pair[1] > 0 else { throw p.fail("anchor \(k + 1) is (\(pair[0]), \(pair[1])); widths and heights must be above 0", atEnd: false) }
            return Shape(width: pair[0], height: pair[1])
        }
    }

    struct Reader {
        let chars: [Unicode.Scalar]
        let field: String, file: String, line: Int?, text: String
        var at = 0

        func fail(_ message: String, atEnd: Bool = true) -> SpecError {
            SpecError(file: file, line: line, field: field,
                      message: "\(message)\(atEnd ? " at character \(at + 1)" : "") of \"\(text)\" (expected e.g. \"[(10, 14), (23, 27), (37, 58)]\")")
        }
        mutating func skipSpace() { while at < chars.count, chars[at].properties.isWhitespace { at += 1 } }

        /// `[a, b, …]` or `(a, b, …)` with `item` read for each element.
        mutating func sequence<T>(_ item: (inout Reader) throws -> T) throws -> [T] {
            skipSpace()
            guard at < chars.count, chars[at] == "[" || chars[at] == "(" else { throw fail("expected '[' or '('") }
            let close: Unicode.Scalar = chars[at] == "[" ? "]" : ")"
            at += 1
            var out: [T] = []
            while true {
                skipSpace()
                if at < chars.count, chars[at] == close { at += 1; return out }
                out.append(try item(&self))
                skipSpace()
                guard at < chars.count else { throw fail("missing '\(close)'") }
                if chars[at] == "," { at += 1; continue }
                guard chars[at] == close else { throw fail("expected ',' or '\(close)'") }
            }
        }

        /// A Python int or float literal (sign, digits with `_`, fraction, exponent).
        mutating func number() throws -> Double {
            skipSpace()
            let start = at
            if at < chars.count, chars[at] == "-" || chars[at] == "+" { at += 1 }
            while at < chars.count, "0123456789._eE".unicodeScalars.contains(chars[at])
                    || ((chars[at] == "-" || chars[at] == "+") && (chars[at - 1] == "e" || chars[at - 1] == "E")) { at += 1 }
            let literal = String(String.UnicodeScalarView(chars[start..<at])).replacingOccurrences(of: "_", with: "")
            guard !literal.isEmpty, let v = Double(literal), v.isFinite else {
                at = start
                throw fail("expected a number")
            }
            return v
        }
    }
}
