import LoomTensor
import Synchronization

/// An object Keras serializes as {"module", "class_name", "config", "registered_name"}.
public protocol KerasSerializable: Sendable {
    /// Keras's class name ("GlorotUniform"), or "Package>Name" for a user-registered type.
    static var kerasClassName: String { get }
    /// The module Keras writes ("keras.initializers").
    static var kerasModule: String { get }
    /// The config dictionary Keras's get_config returns.
    var config: Config { get }
    /// The full serialized form (a default implementation is provided).
    var serialized: JSONValue { get }
}

extension KerasSerializable {
    /// The full serialized form, as keras.saving.serialize_keras_object writes it.
    public var serialized: JSONValue {
        let name = Self.kerasClassName
        if let split = name.firstIndex(of: ">") {
            return ["module": nil, "class_name": .string(String(name[name.index(after: split)...])),
                    "config": .object(config), "registered_name": .string(name)]
        }
        return ["module": .string(Self.kerasModule), "class_name": .string(name), "config": .object(config),
                "registered_name": nil]
    }
}

/// The anatomy every kind of Keras object shares: the type owns its Keras class name (and its
/// config, from KerasSerializable), the other names Keras accepts for it, and `from(config:)`,
/// which takes absent keys from the type's own init defaults. Registries are built from lists of
/// such types.
public protocol KerasConfigurable: KerasSerializable {
    /// The other names Keras accepts ("glorot_uniform", "l2").
    static var kerasAliases: [String] { get }
    /// The object a Keras config describes.
    static func from(config: Config) throws -> Self
}

extension KerasConfigurable {
    /// A reader of `config` whose errors name this class.
    static func reader(_ config: Config) -> ConfigReader { ConfigReader(config, object: kerasClassName) }
}

/// One table of Keras names for one kind of object (initializers, regularizers, constraints,
/// activations, layers): class names, the snake_case and legacy aliases Keras accepts, and
/// user types registered as "Package>Name".
public final class Registry<Kind>: Sendable {
    public typealias Factory = @Sendable (Config) throws -> Kind
    private struct Alias: Sendable { let className: String; let config: Config }
    private struct Tables: Sendable {
        var factories: [String: Factory] = [:]
        var aliases: [String: Alias] = [:]
    }
    private let tables = SystemLock(Tables())
    /// What the table holds, for messages ("initializer").
    public let kind: String

    public init(kind: String) { self.kind = kind }

    /// Registers `className`, with aliases that stand for it with a fixed config
    /// (e.g. "l1" for L1 with its defaults).
    public func register(_ className: String, aliases: [String] = [], aliasConfig: Config = [:],
                         _ factory: @escaping Factory) {
        tables.withLock { t in
            t.factories[className] = factory
            for alias in aliases { t.aliases[alias] = Alias(className: className, config: aliasConfig) }
        }
    }

    /// The registered names, sorted.
    public var names: [String] { tables.withLock { (Array($0.factories.keys) + Array($0.aliases.keys)).sorted() } }

    /// Builds an object from a name ("glorot_uniform", "GlorotUniform") or a serialized dict.
    /// `owner` and `argument` name where the value came from, for the error.
    public func make(_ value: JSONValue, owner: String, argument: String) throws(ConfigError) -> Kind {
        let className: String
        var config: Config = [:]
        switch value {
        case let .string(name):
            className = name
        case let .object(dict):
            var name: String? = nil
            if case let .string(r)? = dict["registered_name"], r.contains(">") { name = r }
            if name == nil, case let .string(c)? = dict["class_name"] { name = c }
            guard let name else { throw ConfigError(owner, argument: argument, "a serialized \(kind) needs a class_name") }
            className = name
            if case let .object(c)? = dict["config"] { config = c }
        default:
            throw ConfigError(owner, argument: argument, "expected a \(kind) name or config, got \(value)")
        }
        let (factory, merged, known): (Factory?, Config, [String]) = tables.withLock { t in
            if let f = t.factories[className] { return (f, config, []) }
            if let alias = t.aliases[className] {
                return (t.factories[alias.className], alias.config.merging(config) { $1 }, [])
            }
            return (nil, config, t.factories.keys.sorted())
        }
        guard let factory else {
            let list = known.isEmpty ? "" : "; supported: " + known.joined(separator: ", ")
            throw ConfigError(owner, argument: argument, "unknown \(kind) '\(className)'\(list)")
        }
        do {
            return try factory(merged)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(owner, argument: argument, "\(error)")
        }
    }
}
