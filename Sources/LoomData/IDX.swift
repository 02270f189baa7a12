import CLoomZlib
import Foundation
import LoomTensor

/// Why a data file (or one element of it: an image, a CSV row) could not be read: the file, with
/// its line where there is one, and what is wrong. Pipelines with ErrorPolicy.skip leave such an
/// element out and go on.
public struct DataFileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { oneLine("\(path): \(message)") }
}

/// IDX files (the MNIST format): a magic number giving the element type and rank, big-endian
/// sizes, then the elements in row-major order. Gzip-compressed files are read transparently.
public enum IDX {
    /// Reads an IDX file of unsigned bytes (type 0x08) as a float tensor of its shape, values
    /// 0...255 unscaled.
    public static func read(_ path: String) throws(DataFileError) -> Tensor {
        let bytes = try readFileMaybeGzip(path)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw DataFileError(path: path, message: "not an IDX file (bad magic number)")
        }
        guard bytes[2] == 0x08 else {
            throw DataFileError(path: path, message: String(format: "IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", bytes[2]))
        }
        let rank = Int(bytes[3])
        guard rank >= 1, bytes.count >= 4 + 4 * rank else {
            throw DataFileError(path: path, message: "IDX header truncated")
        }
        var shape: [Int] = []
        for axis in 0..<rank {
            let o = 4 + 4 * axis
            shape.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let header = 4 + 4 * rank
        // A crafted header's product can overflow Int (found by fuzzing): bounded first.
        guard let count = ShapeLimits.elementCount(shape) else {
            throw DataFileError(path: path, message: "IDX header's shape \(shape) is larger than Loom reads (\(ShapeLimits.maximumElements) elements)")
        }
        guard bytes.count - header == count else {
            throw DataFileError(path: path, message: "IDX data has \(bytes.count - header) bytes, the header \(shape) needs \(count)")
        }
        var tensor = Tensor(uninitializedShape: shape)
        tensor.withUnsafeMutableBufferPointer { out in
            for i in 0..<count { out[i] = Float(bytes[header + i]) }
        }
        return tensor
    }
}
