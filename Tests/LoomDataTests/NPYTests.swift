import Foundation
import LoomTensor
import Testing
@testable import LoomData

/// .npy files written by NumPy (scripts/make_npy_fixtures.py): every array holds arange values.
@Suite struct NPYTests {
    static func path(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)?.path
            ?? Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    static let arange = (0..<24).map(Float.init)

    @Test(arguments: ["float32", "float64", "int32", "int64", "uint8", "fortran", "version2", "version3"])
    func readsWhatNumPyWrote(_ name: String) throws {
        let t = try NPY.read(Self.path(name + ".npy"))
        #expect(t.shape == [2, 3, 4])
        #expect(t.scalars == Self.arange, "\(name)")
    }

    @Test func booleansVectorsAndScalars() throws {
        #expect(try NPY.read(Self.path("bool.npy")).scalars == Self.arange.map { Int($0) % 3 == 0 ? 1 : 0 })
        let v = try NPY.read(Self.path("vector.npy"))
        #expect(v.shape == [5] && v.scalars == [0, 1, 2, 3, 4])
        let s = try NPY.read(Self.path("scalar.npy"))
        #expect(s.shape == [] && s.scalars == [7.5])
    }

    /// A sparse file can hold a header with any shape and "data" to match: a shape larger than
    /// the machine can give is refused before the tensor is allocated (it was a crash).
    @Test func aShapeLargerThanTheMachineIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-huge-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 200), }".utf8)
        header += [UInt8](repeating: 0x20, count: 117 - header.count) + [0x0A]
        try Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header).write(to: URL(fileURLWithPath: path))
        #expect(truncate(path, 1 << 40) == 0)
        do {
            _ = try NPY.read(path)
            Issue.record("no error")
        } catch {
            #expect(error.description.hasPrefix(path + ": shape [1000000000, 200] of <f4 needs 745.06 GB, more than the "), "\(error)")
        }
    }

    /// The tensor is Loom's memory, not a mapping of the file: a file cut to nothing after it
    /// was read (a `cp` over it) leaves the tensor whole (a mapping would die of SIGBUS here).
    @Test func aTensorOutlivesItsFileBeingTruncated() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-t-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values = (0..<100_000).map { Float($0) }
        try NPY.write(Tensor(shape: [values.count], scalars: values), to: path)
        let t = try NPY.read(path)
        #expect(truncate(path, 0) == 0)
        #expect(t.scalars == values)
        #expect(throws: DataFileError.self) { try NPY.read(path) }
    }

    @Test func tensorsReadFromAFileCopyOnWrite() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NPY.write(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), to: path)
        var t = try NPY.read(path)
        t.withUnsafeMutableBufferPointer { $0[0] = 100 }
        #expect(t.scalars == [100, 2, 3, 4])
        #expect(try NPY.read(path).scalars == [1, 2, 3, 4])  // the file is unchanged
    }

    @Test func writesWhatItReadsWithNumPysLayout() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-w-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let original = try NPY.read(Self.path("float32.npy"))
        try NPY.write(original, to: path)
        // Byte for byte what NumPy wrote for the same array.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: Self.path("float32.npy"))))
        try NPY.write(Tensor([1, 2, 3]), to: path)
        #expect(try NPY.read(path).scalars == [1, 2, 3])
    }

    @Test func refusesWhatItCannotRead() {
        func expectFailure(_ name: String, _ fragment: String) {
            do {
                _ = try NPY.read(name.hasPrefix("/") ? name : Self.path(name))
                Issue.record("\(name) was read")
            } catch {
                #expect(error.description.contains(fragment), "\(error)")
                #expect(error.description.contains(name))
            }
        }
        expectFailure("bigendian.npy", "element type '>f4' is not supported (big-endian")
        expectFailure("complex.npy", "element type '<c8' is not supported (supported: <f4, <f8, <i4, <i8, |u1, |b1)")
        expectFailure("truncated.npy", "truncated: shape [2, 3, 4] of <f4 needs 96 bytes of data, the file holds 86")
        expectFailure("/nonexistent/missing.npy", "no such file")
    }

    @Test func craftedHeadersAreRefusedBeforeAllocating() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-c-\(getpid()).npy").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        func write(_ header: String, version: UInt8 = 1) throws {
            var bytes = NPY.magic + [version, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            bytes += Array(header.utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        try write("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }\n")
        #expect(throws: DataFileError.self) { _ = try NPY.read(path) }
        try write("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }\n")
        do { _ = try NPY.read(path) } catch { #expect(error.description.contains("truncated")) }
        try write("{'descr': '<f4', 'shape': (2,), }\n")
        do { _ = try NPY.read(path) } catch { #expect(error.description.contains("no 'fortran_order'")) }
        try write("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", version: 9)
        do { _ = try NPY.read(path) } catch { #expect(error.description.contains("version 9.0 is not supported")) }
        try write("not a dict")
        do { _ = try NPY.read(path) } catch { #expect(error.description.contains("malformed .npy header")) }
    }
}
