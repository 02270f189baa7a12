/// Bounds on the sizes a model may declare, checked before anything is allocated: a config or
/// weights file may come from anyone, and a crafted size must give an error, not an overflow
/// trap or an allocation without bound.
public enum ShapeLimits {
    /// The most elements one weight or one sample's activation may hold (8 GiB of float32).
    public static let maximumElements = 1 << 31
    /// The largest single size a config may give (units, filters, a dimension, a kernel size).
    public static let maximumDimension = 1 << 31

    /// The product of `dims`, or nil when it overflows or passes `maximumElements`.
    public static func elementCount<Dims: Sequence<Int>>(_ dims: Dims) -> Int? {
        var count = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maximumElements else { return nil }
            count = product
        }
        return count
    }
}
