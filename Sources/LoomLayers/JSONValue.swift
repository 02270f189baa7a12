import Foundation
import LoomTensor

/// A JSON value: the form of every Keras config (get_config / from_config, config.json).
/// Numbers keep whether they were written as integers, so configs come back as Keras writes them.
public enum JSONValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON text.
    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Data(text.utf8))
    }

    /// The deepest nesting of arrays and objects parsed: Foundation's decoder refuses more.
    public static let maximumDepth = 512

    /// Parses JSON bytes; the error says whether they are not JSON or nested too deeply.
    public static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        let depth = nestingDepth(data)
        guard depth <= maximumDepth else {
            throw JSONParseError(message: "nested \(depth) levels deep, more than the \(maximumDepth) levels Loom reads")
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw JSONParseError(message: "not valid JSON")
        }
    }

    /// How deep arrays and objects nest in JSON text (brackets inside strings do not count).
    static func nestingDepth(_ data: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1; deepest = Swift.max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// Compact JSON with keys sorted, so equal values print equally.
    public var description: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            // Integral doubles keep a ".0", as Python's json writes them.
            return d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : "\(d)"
        case let .string(s): return JSONValue.quote(s)
        case let .array(a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case let .object(o):
            return "{" + o.keys.sorted().map { "\(JSONValue.quote($0)): \(o[$0]!)" }.joined(separator: ", ") + "}"
        }
    }

    private static func quote(_ s: String) -> String {
        "\"" + escapingControls(s, quotes: true) + "\""
    }

    /// Numeric equality across int and double (Keras writes `2` and `2.0` for the same
    /// setting in different places), with a relative tolerance for float32 round trips.
    public func isEquivalent(to other: JSONValue, relativeTolerance: Double = 1e-6) -> Bool {
        switch (self, other) {
        case let (.object(a), .object(b)):
            return a.keys.sorted() == b.keys.sorted()
                && a.allSatisfy { $0.value.isEquivalent(to: b[$0.key]!, relativeTolerance: relativeTolerance) }
        case let (.array(a), .array(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isEquivalent(to: $1, relativeTolerance: relativeTolerance) }
        default:
            if let x = numberValue, let y = other.numberValue {
                return x == y || abs(x - y) <= relativeTolerance * max(abs(x), abs(y))
            }
            return self == other
        }
    }

    public var numberValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
}

/// A Keras config dictionary.
public typealias Config = [String: JSONValue]

/// JSON that cannot be read, and why.
public struct JSONParseError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
