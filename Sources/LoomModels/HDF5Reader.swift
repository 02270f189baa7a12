import Foundation
import LoomLayers
import LoomTensor

/// A read-only HDF5 file, parsed by Loom itself: the part of the format that Keras (through h5py)
/// and Loom write for weights, that is groups, and numeric datasets stored contiguously or
/// compactly. libhdf5 is not used for reading because it trusts the file: a corrupt or crafted
/// weights file made it read from address 0 or allocate 4 GB (kept in Tests/Fuzz/Crashes). Here
/// every offset and size is checked against the file before it is used, so a bad file is an
/// error naming what is wrong.
struct HDF5Reader {
    let path: String
    private let bytes: Data
    /// The memory `bytes` views, when the reader owns it: float32 datasets are then read as
    /// tensors over it, not copied out.
    private let owner: OwnedBytes?
    private let offsetSize: Int
    private let lengthSize: Int
    /// Where addresses count from (the superblock's offset, when a user block comes first).
    private var base: Int
    private var root: Int

    /// The element types a weights dataset may hold.
    enum ElementType: Equatable {
        case float(size: Int, bigEndian: Bool)
        case integer(size: Int, signed: Bool, bigEndian: Bool)

        var size: Int {
            switch self {
            case let .float(size, _), let .integer(size, _, _): size
            }
        }
    }

    /// A dataset's shape, element type and where its bytes are (nil: never written, all fill).
    struct Dataset {
        let shape: [Int]
        let type: ElementType
        let data: Range<Int>?
    }

    /// A group's links, by name, to object header addresses (nil: a soft or external link).
    typealias Links = [(name: String, address: Int?)]

    init(path: String) throws {
        let data: OwnedBytes, read: Int
        do throws(FileReadFailure) {
            let file = try ReadableFile(path)
            try checkFitsInMemory(file.size, "is")
            data = OwnedBytes(count: file.size)
            read = try file.read(at: 0, into: UnsafeMutableRawBufferPointer(start: data.base, count: data.count))
        } catch {
            throw WeightsFileError(path: path, message: error.reason)
        }
        guard read == data.count else {
            throw WeightsFileError(path: path, message: "shrank while it was read (\(read) of its \(data.count) bytes)")
        }
        try self.init(owned: data, path: path)
    }

    /// A reader over `data`, which the weight tensors it reads then share.
    init(owned data: OwnedBytes, path: String) throws {
        try self.init(data.data, owner: data, path: path)
    }

    /// A reader over a copy-free view of `data`; the tensors it reads are copies.
    init(bytes data: Data, path: String) throws {
        try self.init(data.startIndex == 0 ? data : Data(data), owner: nil, path: path)
    }

    private init(_ data: Data, owner: OwnedBytes?, path: String) throws {
        self.path = path
        self.owner = owner
        bytes = data
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
        // The superblock is at 0 or, after a user block, at 512, 1024, 2048, ...
        var start = 0
        while bytes.count - start < 8 || !bytes[start..<(start + 8)].elementsEqual(signature) {
            start = start == 0 ? 512 : start * 2
            guard start < bytes.count else { throw WeightsFileError(path: path, message: "not a readable HDF5 file") }
        }
        let bytes = self.bytes
        func byte(_ at: Int) throws -> Int {
            guard at < bytes.count else { throw WeightsFileError(path: path, message: "corrupt HDF5 file: the superblock is cut short") }
            return Int(bytes[at])
        }
        let version = try byte(start + 8)
        let sizesAt: Int
        switch version {
        case 0, 1: sizesAt = start + 13
        case 2, 3: sizesAt = start + 9
        default: throw WeightsFileError(path: path, message: "HDF5 superblock version \(version) is not one Loom reads")
        }
        offsetSize = try byte(sizesAt)
        lengthSize = try byte(sizesAt + 1)
        guard [2, 4, 8].contains(offsetSize), [2, 4, 8].contains(lengthSize) else {
            throw WeightsFileError(path: path, message: "corrupt HDF5 file: sizes of offsets \(offsetSize) and lengths \(lengthSize)")
        }
        base = 0
        root = 0
        var cursor = Cursor(at: version <= 1 ? start + (version == 0 ? 24 : 28) : start + 12)
        let baseAddress = try address(&cursor)
        base = baseAddress ?? start
        cursor.position += offsetSize               // v0/1: free space; v2/3: superblock extension
        let end = try u(&cursor, offsetSize)
        // libhdf5 counts the end from the file's start, even after a user block.
        guard end <= UInt64(bytes.count) else {
            throw WeightsFileError(path: path, message: "the HDF5 file is cut short: \(bytes.count) bytes of the \(end) it says it has")
        }
        if version <= 1 {
            cursor.position += 2 * offsetSize       // driver information, the root entry's link name offset
        }
        guard let rootAddress = try address(&cursor) else {
            throw WeightsFileError(path: path, message: "corrupt HDF5 file: the root group has no address")
        }
        root = rootAddress
    }

    // MARK: What WeightsFile asks

    /// Whether `path` (relative to the root) names a group or dataset.
    func exists(_ path: String) throws -> Bool { try find(path) != nil }

    /// The number of links in the group at `path`.
    func count(_ path: String) throws -> Int {
        guard let header = try find(path) else { throw fail("no group \(path)") }
        guard let links = try links(ofObjectAt: header) else { throw fail("\(path) is not a group") }
        return links.count
    }

    /// Reads the numeric dataset at `path` as float32; it must have shape `expected`, which is
    /// checked before anything is allocated.
    func readTensor(_ path: String, expecting expected: [Int], what: @autoclosure () -> String) throws -> Tensor {
        let dataset = try self.dataset(path)
        guard dataset.shape == expected else {
            throw fail("\(what()) has shape \(expected) but \(path) has shape \(dataset.shape)")
        }
        guard let range = dataset.data else { return Tensor(repeating: 0, shape: expected) }
        let type = dataset.type
        // Little-endian float32, as Keras writes weights: the tensor is the file's bytes.
        if let owner, type == .float(size: 4, bigEndian: false), (Int(bitPattern: owner.base) + range.lowerBound) % 4 == 0 {
            let first = (owner.base + range.lowerBound).bindMemory(to: Float.self, capacity: range.count / 4)
            return Tensor(storage: TensorStorage(external: first, count: range.count / 4) { withExtendedLifetime(owner) {} },
                          shape: expected)
        }
        var tensor = Tensor(uninitializedShape: expected)
        tensor.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[range])
                if type == .float(size: 4, bigEndian: false) {
                    _ = memcpy(out.baseAddress!, source.baseAddress!, range.count)
                } else {
                    for i in 0..<out.count { out[i] = Float(Self.element(source, i, type)) }
                }
            }
        }
        return tensor
    }

    /// Reads the scalar integer dataset at `path` (a float one must hold a whole number).
    func readInt(_ path: String) throws -> Int {
        let dataset = try self.dataset(path)
        guard dataset.shape.isEmpty || dataset.shape == [1] else {
            throw fail("\(path) should be a scalar but has shape \(dataset.shape)")
        }
        guard let range = dataset.data else { return 0 }
        return try bytes.withUnsafeBytes { raw in
            let source = UnsafeRawBufferPointer(rebasing: raw[range])
            if case let .integer(size, signed, bigEndian) = dataset.type {
                let bits = Self.unsigned(source, 0, size, bigEndian)
                if signed {
                    let shift = UInt64(64 - size * 8)
                    return Int(Int64(bitPattern: bits << shift) >> Int64(shift))
                }
                guard let value = Int(exactly: bits) else { throw fail("\(path) holds \(bits), too large") }
                return value
            }
            let value = Self.element(source, 0, dataset.type)
            guard let whole = Int(exactly: value) else { throw fail("\(path) holds \(value), not a whole number") }
            return whole
        }
    }

    /// The dataset at `path`, its storage checked to lie inside the file and to match its shape.
    func dataset(_ path: String) throws -> Dataset {
        guard let header = try find(path) else { throw fail("no dataset \(path)") }
        var shape: [Int]?
        var type: ElementType?
        var layout: (kind: Int, range: Range<Int>?)?
        for message in try messages(ofObjectAt: header) {
            var c = Cursor(at: message.body.lowerBound)
            switch message.type {
            case 0x01: shape = try dataspace(&c, message.body)
            case 0x03: type = try datatype(&c, message.body)
            case 0x08: layout = try dataLayout(&c, message.body, path)
            default: break
            }
        }
        guard let shape, let type, let layout else { throw fail("\(path) is not a dataset") }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= ShapeLimits.maximumElements else { throw fail("\(path) has shape \(shape), too large") }
            count = p
        }
        guard let range = layout.range else { return Dataset(shape: shape, type: type, data: nil) }
        guard range.count >= count * type.size else {
            throw fail("corrupt HDF5 file: \(path) holds \(range.count) bytes, not the \(count * type.size) its shape \(shape) needs")
        }
        return Dataset(shape: shape, type: type, data: range.lowerBound..<(range.lowerBound + count * type.size))
    }

    // MARK: Groups and paths

    /// The object header address of `path`, or nil when some part of it is missing.
    private func find(_ path: String) throws -> Int? {
        var here = root
        for part in path.split(separator: "/") {
            guard let links = try links(ofObjectAt: here),
                  let link = links.first(where: { $0.name == part }), let address = link.address else { return nil }
            here = address
        }
        return here
    }

    /// The links of the group whose object header is at `header`, or nil when it is not a group.
    func links(ofObjectAt header: Int) throws -> Links? {
        var links: Links = []
        var isGroup = false
        for message in try messages(ofObjectAt: header) {
            var c = Cursor(at: message.body.lowerBound)
            switch message.type {
            case 0x11:      // symbol table: a v1 B-tree of symbol table nodes, names in a local heap
                isGroup = true
                guard let tree = try address(&c), let heap = try address(&c) else { throw corrupt("a group's symbol table", at: header) }
                let names = try localHeap(at: heap)
                var visited: Set<Int> = []
                try collectSymbols(tree, names: names, depth: 0, visited: &visited, into: &links)
            case 0x06:      // link: a group stored compactly in its header (newer HDF5 formats)
                isGroup = true
                links.append(try link(&c, message.body))
            case 0x02:      // link info: links in a fractal heap when there are many of them
                isGroup = true
                let version = try u(&c, 1, message.body)
                let flags = try u(&c, 1, message.body)
                guard version == 0 else { throw corrupt("a link info message", at: c.position) }
                if flags & 1 != 0 { c.position += 8 }
                if try address(&c) != nil {
                    throw fail("a group stores its links in a fractal heap (HDF5's dense link storage), which Loom's reader does not read")
                }
            default: break
            }
        }
        return isGroup ? links : nil
    }

    private func collectSymbols(_ node: Int, names: Range<Int>, depth: Int, visited: inout Set<Int>, into links: inout Links) throws {
        guard depth < 64, visited.insert(node).inserted else { throw corrupt("a group's B-tree (it loops)", at: node) }
        var c = Cursor(at: try absolute(node))
        let signature = try take(&c, 4)
        if signature.elementsEqual("SNOD".utf8) {
            c.position += 2     // version, reserved
            let entries = try u(&c, 2)
            for _ in 0..<entries {
                let nameOffset = Int(clamping: try u(&c, offsetSize))
                let object = try address(&c)
                c.position += 24    // cache type, reserved, scratch pad
                links.append((try heapString(names, at: nameOffset), object))
            }
            return
        }
        guard signature.elementsEqual("TREE".utf8) else { throw corrupt("a group's B-tree node", at: node) }
        let nodeType = try u(&c, 1)
        _ = try u(&c, 1)                // level
        let entries = try u(&c, 2)
        guard nodeType == 0 else { throw corrupt("a group's B-tree node (type \(nodeType))", at: node) }
        c.position += 2 * offsetSize    // siblings
        for _ in 0..<entries {
            c.position += lengthSize    // key
            guard let child = try address(&c) else { throw corrupt("a group's B-tree node", at: node) }
            try collectSymbols(child, names: names, depth: depth + 1, visited: &visited, into: &links)
        }
    }

    /// The data segment of the local heap at `address`.
    private func localHeap(at address: Int) throws -> Range<Int> {
        var c = Cursor(at: try absolute(address))
        guard try take(&c, 4).elementsEqual("HEAP".utf8) else { throw corrupt("a local heap", at: address) }
        c.position += 4
        guard let size = try length(&c) else { throw corrupt("a local heap", at: address) }
        c.position += lengthSize        // free list
        guard let data = try self.address(&c) else { throw corrupt("a local heap", at: address) }
        return try region(try absolute(data), size)
    }

    private func heapString(_ heap: Range<Int>, at offset: Int) throws -> String {
        guard offset < heap.count else { throw corrupt("a name's offset in its heap", at: heap.lowerBound) }
        let start = heap.lowerBound + offset
        guard let end = bytes[start..<heap.upperBound].firstIndex(of: 0) else { throw corrupt("a name in a heap", at: start) }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    private func link(_ c: inout Cursor, _ body: Range<Int>) throws -> (name: String, address: Int?) {
        guard try u(&c, 1, body) == 1 else { throw corrupt("a link message", at: c.position) }
        let flags = try u(&c, 1, body)
        let kind = flags & 0x08 != 0 ? try u(&c, 1, body) : 0
        if flags & 0x04 != 0 { c.position += 8 }        // creation order
        if flags & 0x10 != 0 { c.position += 1 }        // character set
        let nameLength = try u(&c, 1 << (flags & 3), body)
        guard nameLength <= UInt64(body.count) else { throw corrupt("a link message", at: c.position) }
        let name = String(decoding: try take(&c, Int(nameLength), body), as: UTF8.self)
        return (name, kind == 0 ? try address(&c) : nil)
    }

    // MARK: Object headers

    /// The messages of the object header at `address`, following continuation blocks.
    private func messages(ofObjectAt address: Int) throws -> [(type: Int, body: Range<Int>)] {
        let start = try absolute(address)
        var c = Cursor(at: start)
        var blocks: [(Range<Int>, version: Int)] = []
        if try take(&c, 4).elementsEqual("OHDR".utf8) {
            guard try u(&c, 1) == 2 else { throw corrupt("an object header", at: address) }
            let flags = try u(&c, 1)
            if flags & 0x20 != 0 { c.position += 16 }       // times
            if flags & 0x10 != 0 { c.position += 4 }        // attribute storage thresholds
            let size = try u(&c, 1 << (flags & 3))
            guard size <= UInt64(bytes.count) else { throw corrupt("an object header", at: address) }
            blocks.append((try region(c.position, Int(size)), 2))
        } else {
            c = Cursor(at: start)
            guard try u(&c, 1) == 1 else { throw corrupt("an object header (no version 1 or 2 header there)", at: address) }
            c.position += 3         // reserved, message count
            c.position += 4         // reference count
            let size = try u(&c, 4)
            blocks.append((try region(start + 16, Int(size)), 1))
        }
        // A v2 header can store each message's creation order: two more bytes a message.
        let tracksOrder = blocks[0].version == 2 && bytes[start + 5] & 0x04 != 0
        var out: [(type: Int, body: Range<Int>)] = []
        var i = 0
        while i < blocks.count {
            guard i < 1000 else { throw corrupt("an object header (too many continuation blocks)", at: address) }
            let (block, version) = blocks[i]
            i += 1
            var m = Cursor(at: block.lowerBound)
            // v1: type(2) size(2) flags(1) reserved(3); v2: type(1) size(2) flags(1) [order(2)].
            let headerSize = version == 1 ? 8 : tracksOrder ? 6 : 4
            while block.upperBound - m.position >= headerSize {
                let type = try u(&m, version == 1 ? 2 : 1, block)
                let size = try u(&m, 2, block)
                let flags = try u(&m, 1, block)
                m.position += headerSize - (version == 1 ? 5 : 4)
                guard size <= UInt64(block.upperBound - m.position) else {
                    throw corrupt("an object header message (its size runs past its block)", at: m.position)
                }
                let body = m.position..<(m.position + Int(size))
                m.position = body.upperBound
                if flags & 0x02 != 0, [0x01, 0x03, 0x08].contains(type) {
                    throw fail("a dataset's description is shared (HDF5's committed or shared messages), which Loom's reader does not read")
                }
                if type == 0x10 {       // continuation
                    var b = Cursor(at: body.lowerBound)
                    guard let next = try self.address(&b), let length = try self.length(&b) else {
                        throw corrupt("an object header continuation", at: body.lowerBound)
                    }
                    var region = try self.region(try absolute(next), length)
                    if version == 2 {
                        guard region.count >= 8, bytes[region.lowerBound..<(region.lowerBound + 4)].elementsEqual("OCHK".utf8) else {
                            throw corrupt("an object header continuation block", at: next)
                        }
                        region = (region.lowerBound + 4)..<(region.upperBound - 4)    // signature, checksum
                    }
                    blocks.append((region, version))
                } else {
                    out.append((Int(type), body))
                }
            }
        }
        return out
    }

    // MARK: Dataset messages

    private func dataspace(_ c: inout Cursor, _ body: Range<Int>) throws -> [Int] {
        let version = try u(&c, 1, body)
        let rank = Int(try u(&c, 1, body))
        let flags = try u(&c, 1, body)
        switch version {
        case 1: c.position += 5
        case 2:
            let kind = try u(&c, 1, body)
            guard kind != 2 else { return [0] }     // a null dataspace holds nothing
        default: throw corrupt("a dataspace message (version \(version))", at: body.lowerBound)
        }
        guard rank <= 32 else { throw corrupt("a dataspace of rank \(rank)", at: body.lowerBound) }
        _ = flags
        return try (0..<rank).map { _ in
            let d = try u(&c, lengthSize, body)
            guard d <= UInt64(ShapeLimits.maximumElements) else { throw fail("a dataset's dimension \(d) is larger than Loom allows") }
            return Int(d)
        }
    }

    private func datatype(_ c: inout Cursor, _ body: Range<Int>) throws -> ElementType {
        let classAndVersion = try u(&c, 1, body)
        let bits = try u(&c, 3, body)
        let size = Int(try u(&c, 4, body))
        guard classAndVersion & 0x0f <= 1 else {
            throw fail("a dataset holds HDF5 type class \(classAndVersion & 0x0f) (not numbers), which Loom does not read as weights")
        }
        let bitOffset = try u(&c, 2, body)
        let precision = try u(&c, 2, body)
        let bigEndian = bits & 1 != 0
        guard bitOffset == 0, precision == UInt64(size * 8) else {
            throw fail("a dataset holds \(precision)-bit numbers at bit \(bitOffset) of \(size) bytes, which Loom's reader does not read")
        }
        if classAndVersion & 0x0f == 0 {
            guard [1, 2, 4, 8].contains(size) else { throw fail("a dataset holds \(size)-byte integers, which Loom does not read") }
            return .integer(size: size, signed: bits & 0x08 != 0, bigEndian: bigEndian)
        }
        guard [2, 4, 8].contains(size), bits & 0x40 == 0 else {
            throw fail("a dataset holds \(size)-byte floats in a layout Loom does not read (IEEE half, single and double are read)")
        }
        c.position += 1     // exponent location
        let exponentBits = Int(try u(&c, 1, body))
        guard exponentBits == [2: 5, 4: 8, 8: 11][size] else {
            throw fail("a dataset holds \(size)-byte floats with a \(exponentBits)-bit exponent, not IEEE's")
        }
        return .float(size: size, bigEndian: bigEndian)
    }

    private func dataLayout(_ c: inout Cursor, _ body: Range<Int>, _ path: String) throws -> (kind: Int, range: Range<Int>?) {
        let version = try u(&c, 1, body)
        guard version == 3 || version == 4 else {
            throw fail("\(path) uses HDF5 data layout version \(version) (HDF5 1.6 and older), which Loom's reader does not read")
        }
        let kind = Int(try u(&c, 1, body))
        switch kind {
        case 0:
            let size = Int(try u(&c, 2, body))
            return (0, try region(c.position, size, within: body))
        case 1:
            let address = try self.address(&c)
            guard let size = try length(&c) else { throw corrupt("a dataset's layout", at: body.lowerBound) }
            guard let address else { return (1, nil) }
            return (1, try region(try absolute(address), size))
        case 2:
            throw fail("\(path) is stored in chunks (compressed or resizable), which Loom's reader does not read; save it without chunks")
        default:
            throw fail("\(path) uses HDF5 layout class \(kind), which Loom's reader does not read")
        }
    }

    // MARK: Bytes

    private struct Cursor {
        var position: Int
        init(at position: Int) { self.position = position }
    }

    private func fail(_ message: String) -> WeightsFileError { WeightsFileError(path: path, message: message) }

    private func corrupt(_ what: String, at offset: Int) -> WeightsFileError {
        fail("corrupt HDF5 file: \(what) at byte \(offset)")
    }

    /// `count` bytes at `start`, checked to lie inside `within` (the whole file by default).
    private func region(_ start: Int, _ count: Int, within: Range<Int>? = nil) throws -> Range<Int> {
        let limit = within ?? 0..<bytes.count
        guard start >= limit.lowerBound, count >= 0, start <= limit.upperBound, count <= limit.upperBound - start else {
            throw corrupt("\(count) bytes said to be there run past the end of the file", at: start)
        }
        return start..<(start + count)
    }

    private func take(_ c: inout Cursor, _ count: Int, _ within: Range<Int>? = nil) throws -> Data {
        let r = try region(c.position, count, within: within)
        c.position = r.upperBound
        return bytes[r]
    }

    /// A little-endian unsigned integer of `size` bytes.
    private func u(_ c: inout Cursor, _ size: Int, _ within: Range<Int>? = nil) throws -> UInt64 {
        let r = try region(c.position, size, within: within)
        c.position = r.upperBound
        var v: UInt64 = 0
        for (k, i) in r.enumerated() { v |= UInt64(bytes[i]) << (8 * k) }
        return v
    }

    /// A file address (relative to the base), or nil when it is HDF5's undefined address.
    private func address(_ c: inout Cursor) throws -> Int? {
        let v = try u(&c, offsetSize)
        if v == (offsetSize == 8 ? UInt64.max : (1 << (8 * offsetSize)) - 1) { return nil }
        guard v < UInt64(bytes.count) else { throw corrupt("an address (\(v)) past the end of the file", at: c.position - offsetSize) }
        return Int(v)
    }

    private func length(_ c: inout Cursor) throws -> Int? {
        let v = try u(&c, lengthSize)
        if v == (lengthSize == 8 ? UInt64.max : (1 << (8 * lengthSize)) - 1) { return nil }
        guard v <= UInt64(bytes.count) else { throw corrupt("a length (\(v)) larger than the file", at: c.position - lengthSize) }
        return Int(v)
    }

    private func absolute(_ address: Int) throws -> Int {
        let (a, overflow) = base.addingReportingOverflow(address)
        guard !overflow, a < bytes.count else { throw corrupt("an address (\(address)) past the end of the file", at: 0) }
        return a
    }

    private static func unsigned(_ source: UnsafeRawBufferPointer, _ i: Int, _ size: Int, _ bigEndian: Bool) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<size {
            let b = UInt64(source[i * size + k])
            v |= bigEndian ? b << (8 * (size - 1 - k)) : b << (8 * k)
        }
        return v
    }

    /// Element `i` of `source` as a Double.
    private static func element(_ source: UnsafeRawBufferPointer, _ i: Int, _ type: ElementType) -> Double {
        switch type {
        case let .float(size, bigEndian):
            let bits = unsigned(source, i, size, bigEndian)
            switch size {
            case 2: return Double(Float16(bitPattern: UInt16(truncatingIfNeeded: bits)))
            case 4: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
            default: return Double(bitPattern: bits)
            }
        case let .integer(size, signed, bigEndian):
            let bits = unsigned(source, i, size, bigEndian)
            guard signed else { return Double(bits) }
            let shift = UInt64(64 - size * 8)
            return Double(Int64(bitPattern: bits << shift) >> Int64(shift))
        }
    }
}

/// Bytes read from a file into memory Loom owns (64-byte aligned), kept alive by the reader
/// and by every tensor that views the weights inside them: a model read from a file holds its
/// weights where they were read, with no second copy (ResNet50: 100 MB).
// @unchecked: the bytes are written while the file is read in, before anything shares them;
// after that each tensor over them writes only its own range (copy-on-write keeps it unique).
final class OwnedBytes: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
    }

    /// The bytes as Data, without a copy; it keeps this owner alive.
    var data: Data {
        Data(bytesNoCopy: base, count: count, deallocator: .custom { [self] _, _ in withExtendedLifetime(self) {} })
    }

    deinit { base.deallocate() }
}
