import Foundation
import LoomLayers
import LoomTensor
import LoomTestSupport
import Testing
@testable import LoomModels

/// Loom's own HDF5 reader against what h5py reads from the same files
/// (scripts/make_hdf5_fixtures.py), and against corrupt copies of them.
@Suite struct HDF5ReaderTests {
    /// A part of expected.json: "read" (file -> groups and datasets) or "refused".
    static func section(_ name: String) -> [String: [String: Any]] {
        let url = URL(fileURLWithPath: WeightsFileTests.fixturePath("hdf5/expected.json"))
        let expected = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] ?? [:]
        return expected[name] as? [String: [String: Any]] ?? [:]
    }

    @Test(arguments: ["earliest", "latest_small", "userblock"])
    func readsWhatH5pyReads(_ name: String) throws {
        let file = try HDF5Reader(path: WeightsFileTests.fixturePath("hdf5/\(name).h5"))
        let content = try #require(Self.section("read")[name])
        let groups = try #require(content["groups"] as? [String: Int])
        let datasets = try #require(content["datasets"] as? [String: [String: Any]])
        #expect(!datasets.isEmpty && !groups.isEmpty)
        for (path, links) in groups { #expect(try file.count(path) == links, "\(name): \(path)") }
        for (path, entry) in datasets {
            let shape = try #require(entry["shape"] as? [Int])
            let values = try #require(entry["values"] as? [Double]).map(Float.init)
            let tensor = try file.readTensor(path, expecting: shape, what: path)
            #expect(tensor.shape == shape && tensor.scalars == values, "\(name): \(path)")
            if shape.isEmpty { #expect(try Float(file.readInt(path)) == values[0], "\(name): \(path)") }
        }
        #expect(try !file.exists("layers/dense/vars/2") && !file.exists("nothing/here"))
        expectError("has shape [3, 4] but layers/dense/vars/0 has shape [4, 3]") {
            _ = try file.readTensor("layers/dense/vars/0", expecting: [3, 4], what: "kernel")
        }
    }

    /// The reader holds the file's bytes, not a mapping: a weights file cut to nothing while it
    /// is open (a `cp` over it) is still read as it was (a mapping would die of SIGBUS here).
    @Test func aFileTruncatedWhileOpenIsReadAsItWas() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loom-h5-t-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.copyItem(atPath: WeightsFileTests.fixturePath("hdf5/earliest.h5"), toPath: path)
        let file = try HDF5Reader(path: path)
        #expect(truncate(path, 0) == 0)
        let datasets = try #require(Self.section("read")["earliest"]?["datasets"] as? [String: [String: Any]])
        for (name, entry) in datasets {
            let shape = try #require(entry["shape"] as? [Int])
            let values = try #require(entry["values"] as? [Double]).map(Float.init)
            #expect(try file.readTensor(name, expecting: shape, what: name).scalars == values)
        }
        expectError("not a readable HDF5 file") { _ = try HDF5Reader(path: path) }
        expectError("is a folder, not a file") { _ = try HDF5Reader(path: FileManager.default.temporaryDirectory.path) }
    }

    @Test func refusesWhatItDoesNotRead() throws {
        let refused = Self.section("refused")
        #expect(refused.count == 3)
        for (name, entry) in refused {
            let dataset = try #require(entry["dataset"] as? String)
            let message = try #require(entry["message"] as? String)
            expectError(message) {
                let file = try HDF5Reader(path: WeightsFileTests.fixturePath("hdf5/\(name).h5"))
                _ = try file.readTensor(dataset, expecting: [8, 8], what: dataset)
            }
        }
        expectError("not a readable HDF5 file") { _ = try HDF5Reader(bytes: Data("just text".utf8), path: "x.h5") }
        expectError("not a readable HDF5 file") { _ = try HDF5Reader(bytes: Data(), path: "x.h5") }
    }

    /// Every cut and many overwritten bytes of a real file: each read either succeeds or throws.
    @Test func corruptCopiesAreErrorsNotCrashes() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: WeightsFileTests.fixturePath("hdf5/earliest.h5")))
        let datasets = try #require(Self.section("read")["earliest"]?["datasets"] as? [String: [String: Any]])
        func readAll(_ bytes: Data) -> Int {
            guard let file = try? HDF5Reader(bytes: bytes, path: "x.h5") else { return 0 }
            var read = 0
            for (path, entry) in datasets {
                if (try? file.readTensor(path, expecting: entry["shape"] as? [Int] ?? [], what: path)) != nil { read += 1 }
                _ = try? file.count("types")
            }
            return read
        }
        #expect(readAll(original) == datasets.count)
        var generator = SplitMix(seed: 23)
        for cut in stride(from: 0, to: original.count, by: 97) { _ = readAll(original.prefix(cut)) }
        var errors = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<4 {
                let at = Int(generator.next() % UInt64(min(original.count, 4096)))
                bytes[at] = UInt8(truncatingIfNeeded: generator.next())
            }
            if readAll(bytes) < datasets.count { errors += 1 }
        }
        #expect(errors > 0)
    }

    /// Inputs the fuzzer found that crashed libhdf5 (a read from address 0) or made it allocate
    /// 4 GB: now errors naming the file.
    @Test func inputsThatBrokeLibhdf5AreErrors() throws {
        let crashes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Crashes")
        let weights = crashes.appendingPathComponent("hdf5-crash-d993689df24f5047146b0366be0096dc511ef140").path
        let model = try Sequential([try Dense(units: 3, activation: .relu), try Dense(units: 2)])
        try model.build(inputShape: [nil, 4])
        expectError(weights) { try model.loadWeights(weights) }
        let archive = crashes.appendingPathComponent("keras-crash-2475931295256dd9f5c81f7229105d4bc2021ccd").path
        expectError("model.weights.h5") { _ = try KerasFile.load(archive) }
    }
}

extension HDF5ReaderTests {
    /// A .keras file whose weights were changed after it was written is refused by its
    /// checksum, whatever byte changed (the weights are read straight into the tensors, so
    /// nothing else would notice a changed weight).
    @Test func aDamagedWeightsEntryIsRefused() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: WeightsFileTests.fixturePath("model_cnn.keras")))
        let header = Data([0x50, 0x4B, 0x03, 0x04])
        var start: Int? = nil
        var search = original.startIndex
        while let found = original.range(of: header, in: search..<original.endIndex) {
            let nameLength = Int(original[found.lowerBound + 26]) | Int(original[found.lowerBound + 27]) << 8
            let extraLength = Int(original[found.lowerBound + 28]) | Int(original[found.lowerBound + 29]) << 8
            let name = found.lowerBound + 30
            if original[name..<(name + nameLength)].elementsEqual("model.weights.h5".utf8) { start = name + nameLength + extraLength }
            search = found.upperBound
        }
        let data = try #require(start)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("loom-damaged-\(getpid()).keras")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // A byte in the superblock, one among the last weights.
        for at in [data + 9, data + 16_000] {
            var damaged = original
            damaged[at] ^= 0x40
            try damaged.write(to: scratch)
            expectError("model.weights.h5 is damaged: its CRC-32 does not match the archive's") { _ = try KerasFile.load(scratch.path) }
        }
        try original.write(to: scratch)
        _ = try KerasFile.load(scratch.path)
    }
}

/// A small seeded generator, so the corrupt copies are the same every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce5_e9b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
