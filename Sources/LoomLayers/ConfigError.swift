import LoomTensor
/// A wrong argument or config: names the object (a layer name, an initializer class) and the
/// argument, and says what is wrong.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var object: String
    public var argument: String?
    public var message: String

    public init(_ object: String, argument: String? = nil, _ message: String) {
        self.object = object
        self.argument = argument
        self.message = message
    }

    public var description: String {
        argument.map { "\(object): argument `\($0)`: \(message)" } ?? "\(object): \(message)"
    }
}

/// Typed reads of a config dictionary, each failing with the object and key it was reading.
public struct ConfigReader {
    public let config: Config
    public let object: String

    public init(_ config: Config, object: String) {
        self.config = config
        self.object = object
    }

    public func has(_ key: String) -> Bool {
        if case .some(.null) = config[key] { return false }
        return config[key] != nil
    }

    /// The value at `key` parsed by `parse`, `value` when absent or null; an error naming the
    /// key when it is required or malformed.
    private func read<T>(_ key: String, _ value: T?, _ expected: String,
                         _ parse: (JSONValue) -> T?) throws(ConfigError) -> T {
        guard let v = config[key], v != .null else {
            guard let value else { throw ConfigError(object, argument: key, "is required") }
            return value
        }
        guard let parsed = parse(v) else { throw ConfigError(object, argument: key, "expected \(expected), got \(v)") }
        return parsed
    }

    public func int(_ key: String, default value: Int? = nil) throws(ConfigError) -> Int {
        try read(key, value, "an integer") { v in
            guard let d = v.numberValue, d == d.rounded(), abs(d) < 1e15 else { return nil }
            return Int(d)
        }
    }

    /// An integer size (units, filters, a dimension): at most `ShapeLimits.maximumDimension`,
    /// so arithmetic on sizes cannot overflow.
    public func size(_ key: String, default value: Int? = nil) throws(ConfigError) -> Int {
        let n = try int(key, default: value)
        guard abs(n) <= ShapeLimits.maximumDimension else {
            throw ConfigError(object, argument: key, "\(n) is larger than Loom allows (\(ShapeLimits.maximumDimension))")
        }
        return n
    }

    /// A count (patience, cooldown, epochs): a non-negative integer size.
    public func count(_ key: String, default value: Int? = nil) throws(ConfigError) -> Int {
        let n = try size(key, default: value)
        guard n >= 0 else { throw ConfigError(object, argument: key, "must be 0 or more, got \(n)") }
        return n
    }

    public func optionalInt(_ key: String) throws(ConfigError) -> Int? { has(key) ? try int(key) : nil }

    public func float(_ key: String, default value: Float? = nil) throws(ConfigError) -> Float {
        try read(key, value, "a number") { $0.numberValue.map(Float.init) }
    }

    public func optionalFloat(_ key: String) throws(ConfigError) -> Float? { has(key) ? try float(key) : nil }

    public func bool(_ key: String, default value: Bool? = nil) throws(ConfigError) -> Bool {
        try read(key, value, "true or false") { if case let .bool(b) = $0 { return b } else { return nil } }
    }

    public func string(_ key: String, default value: String? = nil) throws(ConfigError) -> String {
        try read(key, value, "a string") { if case let .string(s) = $0 { return s } else { return nil } }
    }

    public func optionalString(_ key: String) throws(ConfigError) -> String? { has(key) ? try string(key) : nil }

    /// A list of integers; a single integer reads as a one-element list (Keras accepts both).
    public func ints(_ key: String, default value: [Int]? = nil) throws(ConfigError) -> [Int] {
        try read(key, value, "a list of integers") { v in
            let items: [JSONValue]
            if case let .array(a) = v { items = a } else { items = [v] }
            var out: [Int] = []
            for item in items {
                guard let n = item.numberValue, n == n.rounded(), abs(n) <= Double(ShapeLimits.maximumDimension) else { return nil }
                out.append(Int(n))
            }
            return out
        }
    }

    public func optionalInts(_ key: String) throws(ConfigError) -> [Int]? {
        has(key) ? try ints(key) : nil
    }

    public func value(_ key: String) -> JSONValue { config[key] ?? .null }
}

extension JSONValue {
    /// An optional integer as JSON.
    public static func from(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
    /// An optional float as a JSON double.
    public static func from(_ value: Float?) -> JSONValue { value.map { .double(Double($0)) } ?? .null }
    /// A list of integers.
    public static func from(_ value: [Int]) -> JSONValue { .array(value.map { .int($0) }) }
    /// An optional list of integers.
    public static func from(_ value: [Int]?) -> JSONValue { value.map { .from($0) } ?? .null }
}
