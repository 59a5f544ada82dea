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
        lines = text.components(separatedBy: "\n")
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
        // The first prefix of lines that no longer decodes (its open blocks closed) holds the culprit.
        for n in 1...max(lines.count, 1) {
            let prefix = lines.prefix(n).joined(separator: "\n") + "\n" + String(repeating: "}\n", count: open[n].count)
            if (try? M(textFormatString: prefix)) == nil {
                let context = open[n - 1]
                let name = fieldName(onLine: n)
                let field = (context + (name.map { [$0] } ?? [])).joined(separator: ".")
                return SpecError(file: file, line: n, field: field.isEmpty ? nil : field, message: explain(error, name: name, context: context))
            }
        }
        return SpecError(file: file, message: explain(error, name: nil, context: []))
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
