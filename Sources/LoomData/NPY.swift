import Foundation
import LoomTensor

/// NumPy `.npy` files, format versions 1 to 3: little-endian float32, float64, int32, int64,
/// uint8 and bool arrays, read as float tensors; Fortran-order arrays are transposed into
/// row-major order. Writes float32.
public enum NPY {
    /// The element types Loom reads, by NumPy's `descr`.
    public enum ElementType: String, Sendable, CaseIterable {
        case float32 = "<f4", float64 = "<f8", int32 = "<i4", int64 = "<i8", uint8 = "|u1", bool = "|b1"

        var size: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            case .uint8, .bool: return 1
            }
        }

        /// NumPy also writes these spellings for one-byte types.
        init?(descr: String) {
            switch descr {
            case "<u1", "=u1": self = .uint8
            case "<b1", "=b1": self = .bool
            case "=f4": self = .float32
            case "=f8": self = .float64
            case "=i4": self = .int32
            case "=i8": self = .int64
            default: self.init(rawValue: descr)
            }
        }
    }

    /// What a file's header says.
    public struct Header: Equatable, Sendable {
        public let elementType: ElementType
        public let fortranOrder: Bool
        public let shape: [Int]
        /// Where the elements start.
        public let dataOffset: Int
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Parses the header at the start of `bytes` (at least the first 12 bytes and the header).
    static func header(_ bytes: UnsafeRawBufferPointer, path: String) throws(DataFileError) -> Header {
        func fail(_ message: String) -> DataFileError { DataFileError(path: path, message: message) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (bad magic string)") }
        let major = bytes[6]
        let lengthBytes: Int
        switch major {
        case 1: lengthBytes = 2
        case 2, 3: lengthBytes = 4
        default: throw fail(".npy format version \(major).\(bytes[7]) is not supported (1.0 to 3.0 are)")
        }
        guard bytes.count >= 8 + lengthBytes else { throw fail("truncated .npy header") }
        var length = 0
        for i in 0..<lengthBytes { length |= Int(bytes[8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        guard length <= 1 << 20, bytes.count >= start + length else { throw fail("truncated .npy header") }
        let data = Data(bytes[start..<(start + length)])
        guard let text = String(data: data, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("the .npy header is not text")
        }
        let entries = try dictionary(text, path: path)
        guard case let .string(descr)? = entries["descr"] else { throw fail("the .npy header has no 'descr'") }
        guard let type = ElementType(descr: descr) else {
            let bigEndian = descr.hasPrefix(">")
            throw fail("element type '\(descr)' is not supported"
                + (bigEndian ? " (big-endian; save it little-endian, e.g. with a.astype('<f4'))"
                             : " (supported: \(ElementType.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        guard case let .bool(fortran)? = entries["fortran_order"] else { throw fail("the .npy header has no 'fortran_order'") }
        guard case let .shape(shape)? = entries["shape"] else { throw fail("the .npy header has no 'shape'") }
        return Header(elementType: type, fortranOrder: fortran, shape: shape, dataOffset: start + length)
    }

    private enum Value { case string(String), bool(Bool), shape([Int]) }

    /// The header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
    private static func dictionary(_ text: String, path: String) throws(DataFileError) -> [String: Value] {
        func fail() -> DataFileError { DataFileError(path: path, message: "malformed .npy header: \(text.trimmingCharacters(in: .whitespacesAndNewlines))") }
        var out: [String: Value] = [:]
        let body = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard body.hasPrefix("{"), body.hasSuffix("}") else { throw fail() }
        var rest = Substring(body.dropFirst().dropLast())
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            if rest.isEmpty { break }
            guard let quote = rest.first, quote == "'" || quote == "\"",
                  let keyEnd = rest.dropFirst().firstIndex(of: quote) else { throw fail() }
            let key = String(rest[rest.index(after: rest.startIndex)..<keyEnd])
            rest = rest[rest.index(after: keyEnd)...].drop { $0 == " " }
            guard rest.first == ":" else { throw fail() }
            rest = rest.dropFirst().drop { $0 == " " }
            if let q = rest.first, q == "'" || q == "\"" {
                guard let end = rest.dropFirst().firstIndex(of: q) else { throw fail() }
                out[key] = .string(String(rest[rest.index(after: rest.startIndex)..<end]))
                rest = rest[rest.index(after: end)...]
            } else if rest.hasPrefix("True") {
                out[key] = .bool(true)
                rest = rest.dropFirst(4)
            } else if rest.hasPrefix("False") {
                out[key] = .bool(false)
                rest = rest.dropFirst(5)
            } else if rest.first == "(" {
                guard let end = rest.firstIndex(of: ")") else { throw fail() }
                var dims: [Int] = []
                for part in rest[rest.index(after: rest.startIndex)..<end].split(separator: ",") {
                    let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
                    if t.isEmpty { continue }
                    guard let d = Int(t), d >= 0 else { throw fail() }
                    dims.append(d)
                }
                out[key] = .shape(dims)
                rest = rest[rest.index(after: end)...]
            } else {
                throw fail()
            }
        }
        return out
    }

    /// Reads a `.npy` file as a float tensor of its shape (integers and booleans converted).
    /// Float32 data is read straight into the tensor's storage, with no second copy.
    public static func read(_ path: String) throws(DataFileError) -> Tensor {
        do {
            return try readTensor(path)
        } catch let error as DataFileError {
            throw error
        } catch let failure as FileReadFailure {
            throw DataFileError(path: path, failure)
        } catch {
            throw DataFileError(path: path, message: "cannot be read: \(error)")
        }
    }

    private static func readTensor(_ path: String) throws -> Tensor {
        func fail(_ message: String) -> DataFileError { DataFileError(path: path, message: message) }
        let file = try ReadableFile(path, acceptingPipes: true)
        let size = file.size
        guard size > 0 else { throw fail("empty file, not a .npy array") }
        // header() refuses a header longer than 1 MiB, so this prefix holds any it accepts.
        let prefix = try file.bytes(at: 0, count: min(size, 12 + (1 << 20)))
        let h = try prefix.withUnsafeBytes { raw throws(DataFileError) in try header(raw, path: path) }
        // Sizes are checked before anything is allocated: a crafted shape cannot overflow or
        // make Loom allocate more than the file holds.
        var count = 1
        for d in h.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(h.shape) is too large") }
            count = product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: h.elementType.size)
        func truncated(_ held: Int) -> DataFileError {
            fail("truncated: shape \(h.shape) of \(h.elementType.rawValue) needs \(bytes) bytes of data, the file holds \(max(0, held))")
        }
        guard !overflow, h.dataOffset + bytes <= size else { throw truncated(size - h.dataOffset) }
        // A sparse file can hold a shape of any size; more than the machine can give is refused
        // here, not by the kernel killing the process.
        try checkFitsInMemory(count * 4 + (h.elementType == .float32 ? 0 : bytes), "shape \(h.shape) of \(h.elementType.rawValue) needs")
        var tensor = Tensor(uninitializedShape: h.fortranOrder ? h.shape.reversed() : h.shape)
        let filled: Int
        if h.elementType == .float32 {
            filled = try tensor.withUnsafeMutableBufferPointer { out in
                try file.read(at: h.dataOffset, into: UnsafeMutableRawBufferPointer(out))
            }
        } else {
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 16)
            defer { raw.deallocate() }
            filled = try file.read(at: h.dataOffset, into: raw)
            if let base = raw.baseAddress {
                tensor.withUnsafeMutableBufferPointer { out in convert(base, h.elementType, count, into: out) }
            }
        }
        // A file cut short while it was being read (a copy over it, a download restarting).
        guard filled == bytes else { throw truncated(filled) }
        // Fortran order: the elements are the transpose's, in row-major order.
        if h.fortranOrder && h.shape.count > 1 { tensor = tensor.transposed(Array((0..<h.shape.count).reversed())) }
        return tensor
    }

    private static func convert(_ data: UnsafeMutableRawPointer, _ type: ElementType, _ count: Int,
                                into out: UnsafeMutableBufferPointer<Float>) {
        let p = UnsafeRawPointer(data)
        switch type {
        case .float32: for i in 0..<count { out[i] = p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .float64: for i in 0..<count { out[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .int32: for i in 0..<count { out[i] = Float(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .int64: for i in 0..<count { out[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .uint8: for i in 0..<count { out[i] = Float(p.load(fromByteOffset: i, as: UInt8.self)) }
        case .bool: for i in 0..<count { out[i] = p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        }
    }

    /// Writes a float32 `.npy` file (format 1.0, or 2.0 when the header needs it) that NumPy's
    /// `np.load` reads. Written beside `path` and renamed into place.
    public static func write(_ tensor: Tensor, to path: String) throws(DataFileError) {
        let dims = tensor.shape.map(String.init)
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var headerText = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let version: UInt8 = headerText.utf8.count + 11 > 65_535 ? 2 : 1
        let prefix = version == 1 ? 10 : 12
        // Padded with spaces and a newline so the data starts on a 64-byte boundary, as NumPy does.
        let total = (prefix + headerText.utf8.count + 1 + 63) / 64 * 64
        headerText += String(repeating: " ", count: total - prefix - headerText.utf8.count - 1) + "\n"
        var bytes = magic + [version, 0]
        let length = headerText.utf8.count
        bytes += version == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)]
                              : (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
        bytes += Array(headerText.utf8)
        var file = Data(bytes)
        tensor.withUnsafeBufferPointer { file.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        do throws(FileWriteFailure) {
            try replaceFile(path, with: file, flush: false)
        } catch {
            throw DataFileError(path: path, message: error.reason)
        }
    }
}
