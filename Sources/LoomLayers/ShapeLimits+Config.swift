import LoomTensor

extension ShapeLimits {
    /// A size read from a config (a dimension, a padding amount): a whole number in
    /// 0...maximumDimension, or nil, so that no config value can trap a conversion.
    public static func size(_ value: JSONValue) -> Int? {
        guard let d = value.numberValue, d == d.rounded(), d >= 0, d <= Double(maximumDimension) else { return nil }
        return Int(d)
    }

    /// The product of `dims`, or an error naming `owner` and `what` when it is too large.
    public static func checkedCount<Dims: Sequence<Int>>(_ dims: Dims, owner: String, what: String) throws(ConfigError) -> Int {
        guard let count = elementCount(dims) else {
            throw ConfigError(owner, "\(what) of shape \(Array(dims)) is larger than Loom allows (\(maximumElements) elements)")
        }
        return count
    }
}
