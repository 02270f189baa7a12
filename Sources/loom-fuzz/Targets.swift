import Foundation
import LoomData
import LoomJobs
import LoomLayers
import LoomModels

/// The parsers of untrusted bytes, each fed one input; an error thrown is the right answer to a
/// bad input, a trap or a sanitizer report is a bug.
enum FuzzTarget: String, CaseIterable {
    case png, jpeg, csv, gzip, npy, idx, keras, config, hdf5, job

    /// The target named by $LOOM_FUZZ_TARGET (libFuzzer gives the entry point no arguments of
    /// its own).
    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["LOOM_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("loom-fuzz: set LOOM_FUZZ_TARGET to one of \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return target
    }()

    /// A scratch file per process for the parsers that read paths.
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("loom-fuzz-\(getpid())")

    /// A small model whose weights file the hdf5 target reads.
    static let model: Model? = try? {
        let net = try Sequential([try Dense(units: 3, activation: .relu), try Dense(units: 2)])
        try net.build(inputShape: [nil, 4])
        return net
    }()

    func run(_ data: Data) {
        let fm = FileManager.default
        try? fm.createDirectory(at: Self.scratch, withIntermediateDirectories: true)
        func file(_ name: String) -> String {
            let path = Self.scratch.appendingPathComponent(name).path
            _ = fm.createFile(atPath: path, contents: data)
            return path
        }
        switch self {
        case .png: _ = try? ImageCodec.decodePNG(data)
        case .jpeg: _ = try? ImageCodec.decodeJPEG(data)
        case .csv: _ = try? CSV.read([file("input.csv")])
        case .gzip: _ = try? CSV.read([file("input.csv.gz")])
        case .npy: _ = try? NPY.read(file("input.npy"))
        case .idx: _ = try? IDX.read(file("input.idx"))
        case .keras: _ = try? KerasFile.load(file("input.keras"))
        case .config:
            if let config = try? JSONValue.parse(data) { _ = try? Model.fromKerasConfig(config) }
        case .hdf5: try? Self.model?.loadWeights(file("input.weights.h5"))
        case .job: _ = try? Job.read(file("input.yaml"))
        }
    }
}

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: size) } ?? Data()
    FuzzTarget.selected.run(data)
    return 0
}
