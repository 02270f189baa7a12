import Foundation
import LoomLayers
import Yams

/// A mistake in a job file: where it is (file, line, key path) and why.
public struct JobFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    /// The key path, e.g. "fit.epochs" or "model.layers[2].Dense.units".
    public let keyPath: String
    public let message: String

    public init(file: String, line: Int?, keyPath: String, _ message: String) {
        (self.file, self.line, self.keyPath, self.message) = (file, line, keyPath, message)
    }

    public var description: String {
        let place = file + (line.map { ":\($0)" } ?? "")
        return keyPath.isEmpty ? "\(place): \(message)" : "\(place): \(keyPath): \(message)"
    }
}

/// One value of a job file (YAML or JSON, parsed by Yams) with its key path and line, read
/// through typed accessors that throw `JobFileError`s naming both.
struct JobField {
    let node: Node
    let path: String
    let file: String

    var line: Int? { node.mark?.line }

    func error(_ message: String) -> JobFileError { JobFileError(file: file, line: line, keyPath: path, message) }

    /// What the value looks like, for messages.
    var shown: String {
        switch node {
        case let .scalar(s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    var isNull: Bool {
        if case let .scalar(s) = node { return s.style == .plain && (node.null != nil) }
        return false
    }

    func string() throws -> String {
        guard case let .scalar(s) = node, !isNull else { throw error("expected a string, got \(shown)") }
        return s.string
    }

    func int() throws -> Int {
        guard case let .scalar(s) = node, s.style == .plain, let v = node.int else { throw error("expected an integer, got \(shown)") }
        return v
    }

    func int(in range: ClosedRange<Int>) throws -> Int {
        let v = try int()
        guard range.contains(v) else {
            throw error(range.upperBound == Int.max ? "must be at least \(range.lowerBound), got \(v)" : "must be in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return v
    }

    func double() throws -> Double {
        guard case let .scalar(s) = node, s.style == .plain, let v = node.int.map(Double.init) ?? node.float, v.isFinite else {
            throw error("expected a number, got \(shown)")
        }
        return v
    }

    func bool() throws -> Bool {
        guard case let .scalar(s) = node, s.style == .plain, let v = node.bool else { throw error("expected true or false, got \(shown)") }
        return v
    }

    func list() throws -> [JobField] {
        guard case let .sequence(items) = node else { throw error("expected a list, got \(shown)") }
        return items.enumerated().map { JobField(node: $0.element, path: "\(path)[\($0.offset)]", file: file) }
    }

    /// A list, or one value standing for a list of one.
    func oneOrMany() -> [JobField] {
        if case .sequence = node { return (try? list()) ?? [] }
        return [self]
    }

    func object() throws -> JobObject { try JobObject(self) }

    /// The value as JSON (a Keras config), with YAML's plain scalars typed as YAML 1.1 types them.
    func json() throws -> JSONValue {
        switch node {
        case let .scalar(s):
            guard s.style == .plain else { return .string(s.string) }
            if node.null != nil { return .null }
            if let b = node.bool { return .bool(b) }
            if let i = node.int { return .int(i) }
            if let d = node.float { return .double(d) }
            return .string(s.string)
        case .sequence:
            return .array(try list().map { try $0.json() })
        case let .mapping(m):
            var o: [String: JSONValue] = [:]
            for (k, v) in m {
                guard let key = k.string else { throw error("keys must be strings") }
                o[key] = try JobField(node: v, path: path.isEmpty ? key : "\(path).\(key)", file: file).json()
            }
            return .object(o)
        case .alias:
            throw error("YAML aliases are not supported in job files")
        }
    }
}

/// A mapping of a job file: each key is read once; `finish()` refuses the keys nobody read,
/// so a misspelt key is named instead of ignored.
final class JobObject {
    let field: JobField
    private var entries: [(key: String, value: Node)] = []
    private var read = Set<String>()

    init(_ field: JobField) throws {
        self.field = field
        guard case let .mapping(m) = field.node else { throw field.error("expected a mapping, got \(field.shown)") }
        for (k, v) in m {
            guard let key = k.string else { throw field.error("keys must be strings") }
            if entries.contains(where: { $0.key == key }) {
                throw JobFileError(file: field.file, line: k.mark?.line, keyPath: childPath(key), "appears twice")
            }
            entries.append((key, v))
        }
    }

    var keys: [String] { entries.map(\.key) }

    private func childPath(_ key: String) -> String { field.path.isEmpty ? key : "\(field.path).\(key)" }

    /// The value under `key`, if present (and not null).
    func optional(_ key: String) -> JobField? {
        read.insert(key)
        guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
        let f = JobField(node: node, path: childPath(key), file: field.file)
        return f.isNull ? nil : f
    }

    /// The value under `key`, which must be there; when it is not, a key of the mapping
    /// spelt nearly the same is named.
    func required(_ key: String) throws -> JobField {
        guard let f = optional(key) else {
            let near = entries.map(\.key).filter { !read.contains($0) && editDistance($0, key) <= 2 }
            throw field.error("missing key '\(key)'" + (near.first.map { " ('\($0)' is given: misspelt?)" } ?? ""))
        }
        return f
    }

    /// Throws for the first key not read, listing the keys this mapping takes.
    func finish(known extra: [String] = []) throws {
        for (key, node) in entries where !read.contains(key) {
            let known = (Array(read) + extra).sorted().joined(separator: ", ")
            throw JobFileError(file: field.file, line: node.mark?.line, keyPath: childPath(key), "unknown key (known here: \(known))")
        }
    }
}

enum JobFileParser {
    /// Parses YAML or JSON text (JSON is read as YAML, which it is, less a few corners).
    static func parse(_ text: String, file: String) throws -> JobField {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw JobFileError(file: file, line: nil, keyPath: "", "the file is empty")
            }
            return JobField(node: node, path: "", file: file)
        } catch let error as JobFileError {
            throw error
        } catch let error as YamlError {
            throw JobFileError(file: file, line: error.line, keyPath: "", "not valid YAML or JSON: \(error.reason)")
        } catch {
            throw JobFileError(file: file, line: nil, keyPath: "", "not valid YAML or JSON: \(error)")
        }
    }
}

extension YamlError {
    var line: Int? {
        switch self {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _): return mark.line
        default: return nil
        }
    }

    var reason: String {
        switch self {
        case let .scanner(_, problem, _, _), let .parser(_, problem, _, _), let .composer(_, problem, _, _): return problem
        default: return "\(self)"
        }
    }
}

/// Levenshtein distance, for naming a misspelt key.
func editDistance(_ a: String, _ b: String) -> Int {
    let (x, y) = (Array(a), Array(b))
    var previous = Array(0...y.count)
    for i in 1...Swift.max(x.count, 1) where !x.isEmpty {
        var current = [i] + Array(repeating: 0, count: y.count)
        for j in 1...Swift.max(y.count, 1) where !y.isEmpty {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return x.isEmpty ? y.count : previous[y.count]
}
