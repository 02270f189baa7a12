import Foundation
import Testing
@testable import LoomData

@Suite struct IDXTests {
    static let datasets = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../datasets/mnist").standardized.path

    @Test func readsTheBundledMNISTLabels() throws {
        let labels = try IDX.read(Self.datasets + "/train-labels-idx1-ubyte.gz")
        #expect(labels.shape == [60000])
        // The published class counts of the MNIST training set.
        var counts = [Int](repeating: 0, count: 10)
        for v in labels.scalars { counts[Int(v)] += 1 }
        #expect(counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        let images = try IDX.read(Self.datasets + "/t10k-images-idx3-ubyte.gz")
        #expect(images.shape == [10000, 28, 28])
        #expect(images.scalars.allSatisfy { $0 >= 0 && $0 <= 255 })
    }

    @Test func readsUncompressedFilesAndRejectsBadOnes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-idx-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("m.idx").path
        try Data([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]).write(to: URL(fileURLWithPath: good))
        let t = try IDX.read(good)
        #expect(t.shape == [2, 3] && t.scalars == [1, 2, 3, 4, 5, 255])

        let short = dir.appendingPathComponent("short.idx").path
        try Data([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2]).write(to: URL(fileURLWithPath: short))
        #expect(throws: DataFileError(path: short, message: "IDX data has 2 bytes, the header [2, 3] needs 6")) {
            try IDX.read(short)
        }
        // A header whose sizes multiply past Int (the fuzzer's find: it trapped on overflow).
        let huge = dir.appendingPathComponent("huge.idx").path
        try Data([0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0x27, 0x10, 0, 0, 0x00, 0x1C, 0, 0] + [UInt8](repeating: 0, count: 64))
            .write(to: URL(fileURLWithPath: huge))
        #expect(throws: DataFileError(path: huge, message: "IDX header's shape [4294967295, 655360000, 1835008] is larger than Loom reads (2147483648 elements)")) {
            try IDX.read(huge)
        }
        let floats = dir.appendingPathComponent("f.idx").path
        try Data([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: floats))
        #expect(throws: DataFileError.self) { try IDX.read(floats) }
        #expect(throws: DataFileError(path: dir.path + "/none", message: "no such file")) { try IDX.read(dir.path + "/none") }
    }
}
