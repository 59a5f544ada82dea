import Foundation

/// Runs an independent Python reference (a script under Tests/, with .venv's numpy, scikit-learn,
/// protobuf and crc32c from scripts/install-deps.sh; TAO_PYTHON overrides the interpreter).
public enum PythonReference {
    public static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static var python: String { ProcessInfo.processInfo.environment["TAO_PYTHON"] ?? repo.appendingPathComponent(".venv/bin/python").path }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// `script` (relative to the repository) with `arguments`, `input` on its standard input; returns its standard output.
    public static func run(_ script: String, arguments: [String] = [], input: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [repo.appendingPathComponent(script).path] + arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (stdin, stdout, stderr)
        try p.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(script) failed (its packages come from scripts/install-deps.sh): " + String(decoding: err, as: UTF8.self).suffix(2000))
        }
        return out
    }
}
