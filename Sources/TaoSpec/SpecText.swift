import Foundation
import SwiftProtobuf

/// A spec file that cannot be used, with the file, line and field when known.
public struct SpecError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String
    public init(file: String, line: Int? = nil, field: String? = nil, message: String) {
        self.file = file; self.line = line; self.field = field; self.message = message
    }
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ": "
        if let field { s += "\(field): " }
        return s + message
    }
}

/// The text of a spec file with a light tokenizer that knows, for every line, which fields are
/// open around it (`train_config.lr_config.cosine`), so that errors can name line and field.
public struct SpecText {
    public let file: String
    public let lines: [String]

    public init(file: String, text: String) {
        self.file = file
        // By Character: "\r\n" is one Character in Swift, so splitting at "\n" would leave a
        // Windows-edited spec (tao_tf1's own PeopleSemSegNet test spec is one) a single line.
        lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
    }

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpecError(file: path, message: "cannot read the spec file (missing or unreadable)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw SpecError(file: path, message: "the spec file is not UTF-8 text") }
        self.init(file: path, text: text)
    }

    /// One token of the text format: a name, a value, or punctuation, with its 1-based line.
    struct Token { var text: String; var line: Int }

    func tokens() -> [Token] {
        var out: [Token] = []
        for (i, raw) in lines.enumerated() {
            var chars = Array(raw)
            var k = 0
            func emit(_ s: String) { out.append(Token(text: s, line: i + 1)) }
            while k < chars.count {
                let c = chars[k]
                if c == "#" { break }
                if c.isWhitespace || c == "," || c == ";" { k += 1; continue }
                if "{}[]:<>".contains(c) { emit(String(c)); k += 1; continue }
                if c == "\"" || c == "'" {
                    var j = k + 1
                    while j < chars.count && chars[j] != c { if chars[j] == "\\" { j += 1 }; j += 1 }
                    emit(String(chars[k...min(j, chars.count - 1)])); k = j + 1; continue
                }
                var j = k
                while j < chars.count && !(chars[j].isWhitespace || "{}[]:<>,;#\"'".contains(chars[j])) { j += 1 }
                emit(String(chars[k..<j])); k = j
            }
            chars.removeAll()
        }
        return out
    }

    /// For each line, the fields open at its end (outermost first).
    func openBlocks() -> [[String]] {
        var stack: [String] = []
        var result = [[String]](repeating: [], count: lines.count + 1)
        var last: String?
        var lineDone = 0
        for t in tokens() {
            while lineDone < t.line - 1 { lineDone += 1; result[lineDone] = stack }
            switch t.text {
            case "{", "<": stack.append(last ?? "?")
            case "}", ">": if !stack.isEmpty { stack.removeLast() }
            case ":", "[", "]": break
            default: last = t.text
            }
        }
        while lineDone < lines.count { lineDone += 1; result[lineDone] = stack }
        return result
    }

    /// The 1-based line where the field at `path` (e.g. ["train_config", "n_epochs"]) is set, if it is.
    public func line(of path: [String]) -> Int? {
        var stack: [String] = []
        var prev: String?
        for t in tokens() {
            switch t.text {
            case "{", "<": stack.append(prev ?? "?")
            case "}", ">": if !stack.isEmpty { stack.removeLast() }
            case ":", "[", "]": break
            default:
                if stack == Array(path.dropLast()) && t.text == path.last { return t.line }
                prev = t.text
            }
        }
        return nil
    }

    /// The error for the field at `path`, naming the file, its line (where set) and the field.
    public func error(at path: [String], _ message: String) -> SpecError {
        SpecError(file: file, line: line(of: path), field: path.joined(separator: "."), message: message)
    }

    /// A note on the field at `path` for the run's log: "FILE:LINE: FIELD: message".
    public func note(at path: [String], _ message: String) -> String {
        "\(file):\(line(of: path) ?? 0): \(path.joined(separator: ".")): \(message)"
    }

    /// Decodes `M` from the text; a failure names the first line at which decoding breaks.
    public func decode<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M {
        let text = lines.joined(separator: "\n")
        do {
            return try M(textFormatString: text)
        } catch {
            throw locate(error, as: type)
        }
    }

    private func locate<M: SwiftProtobuf.Message>(_ error: Error, as type: M.Type) -> SpecError {
        let open = openBlocks()
        // The first prefix of lines that fails as the whole text does (its open blocks closed) holds
        // the culprit. Other failures of a prefix are the cut's own (a map entry cut before its
        // value, say).
        for n in 1...max(lines.count, 1) {
            let prefix = lines.prefix(n).joined(separator: "\n") + "\n" + String(repeating: "}\n", count: open[n].count)
            if Self.fails(prefix, as: type, like: error) {
                let (name, context) = culprit(onLine: n, as: type, like: error) ?? (fieldName(onLine: n), open[n - 1])
                let field = (context + (name.map { [$0] } ?? [])).joined(separator: ".")
                return SpecError(file: file, line: n, field: field.isEmpty ? nil : field, message: explain(error, name: name, context: context))
            }
        }
        return SpecError(file: file, message: explain(error, name: nil, context: []))
    }

    /// The field on line `n` (the first line that breaks decoding) where it breaks, with the fields
    /// open around it: the text is cut before each field named on the line in turn (its open blocks
    /// closed), and the culprit is the last field whose cut still decodes. A line can hold several
    /// fields (`key: "car" value: { clustering_config { dbscan_epss: 0.3 } }`), and a misspelling
    /// deep inside it is named, not the line's first field.
    private func culprit<M: SwiftProtobuf.Message>(onLine n: Int, as type: M.Type, like error: Error) -> (String, [String])? {
        let before = lines.prefix(n - 1).joined(separator: "\n") + "\n"
        let line = Array(lines[n - 1])
        // The fields named on the line: a name followed by ':', '{' or '<', with its column and the
        // blocks open where it starts.
        let toks = tokens()
        guard let first = toks.firstIndex(where: { $0.line == n }) else { return nil }
        var stack = openBlocks()[n - 1]
        var fields: [(name: String, column: Int, open: [String])] = []
        var last: String?
        var column = 0
        for k in first..<toks.count where toks[k].line == n {
            let t = toks[k]
            // Columns: tokens appear in order, so each is found after the previous one.
            let chars = Array(t.text)
            while column < line.count, !line[column...].starts(with: chars) { column += 1 }
            let next = k + 1 < toks.count && toks[k + 1].line == n ? toks[k + 1].text : nil
            switch t.text {
            case "{", "<": stack.append(last ?? "?")
            case "}", ">": if !stack.isEmpty { stack.removeLast() }
            case ":", "[", "]": break
            default:
                if let next, [":", "{", "<"].contains(next) { fields.append((t.text, column, stack)) }
                last = t.text
            }
            column += chars.count
        }
        func decodes(upTo column: Int, closing: Int) -> Bool {
            !Self.fails(before + String(line[..<column]) + "\n" + String(repeating: "}\n", count: closing), as: type, like: error)
        }
        var found: (String, [String])?
        for (i, f) in fields.enumerated() {
            guard decodes(upTo: f.column, closing: f.open.count) else { break }
            let end = i + 1 < fields.count ? (fields[i + 1].column, fields[i + 1].open.count) : (line.count, stack.count)
            if !decodes(upTo: end.0, closing: end.1) { found = (f.name, f.open); break }
        }
        return found
    }

    /// Whether decoding `text` fails with the same error as `error`.
    private static func fails<M: SwiftProtobuf.Message>(_ text: String, as type: M.Type, like original: Error) -> Bool {
        do { _ = try M(textFormatString: text); return false } catch { return "\(error)" == "\(original)" }
    }

    private func fieldName(onLine n: Int) -> String? {
        tokens().first { $0.line == n && !"{}[]:<>".contains($0.text) }?.text
    }

    private func explain(_ error: Error, name: String?, context: [String]) -> String {
        let inside = context.isEmpty ? "at the top level" : "inside \(context.joined(separator: "."))"
        guard let e = error as? TextFormatDecodingError else { return "\(error)" }
        switch e {
        case .unknownField: return "unknown field '\(name ?? "?")' \(inside) (misspelled, or not part of this task's spec)"
        case .malformedNumber: return "expected a number"
        case .malformedText: return "malformed text (check braces, colons and quotes)"
        case .unrecognizedEnumValue: return "not an allowed value for this field"
        case .missingFieldNames: return "expected a field name"
        default: return "invalid value (\(e))"
        }
    }
}
