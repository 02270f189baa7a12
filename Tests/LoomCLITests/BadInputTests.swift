import Foundation
import LoomData
import LoomTensor
import Testing
import ZIPFoundation

/// A `.keras` file is data and may come from anyone: every bad input gives one clear line on
/// stderr and a non-zero exit, never a crash, and writes nothing.
@Suite struct BadInputTests {
    static let plain = LoomProcess.fixture("bad/plain.keras"), x = LoomProcess.fixture("bad/x_plain.npy")

    /// Runs `loom predict` on `model` and `input`, expecting a refusal mentioning `fragments`.
    static func expectRefusal(_ arguments: [String], _ fragments: [String], output: URL? = nil,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try LoomProcess.run(arguments)
        #expect(result.status == 1, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
        let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!message.isEmpty && !message.contains("\n"), "not one line: \(result.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(message.contains(fragment), "\(message)\nlacks: \(fragment)", sourceLocation: sourceLocation)
        }
        for bad in ["Fatal error", "backtrace", "Stack dump"] {
            #expect(!result.stderr.contains(bad), "\(result.stderr)", sourceLocation: sourceLocation)
        }
        if let output { #expect(!FileManager.default.fileExists(atPath: output.path), "an output was written", sourceLocation: sourceLocation) }
    }

    static let cases: [(file: String, fragments: [String])] = [
        ("lambda_bytecode.keras", ["doubler", "holds Python bytecode, which Loom never runs",
                                   "Lambda.register(\"doubler\")"]),
        ("unknown_layer.keras", ["unknown layer 'FancyDense'; supported: Activation,", "Dense,"]),
        ("huge_units.keras", ["units", "larger than Loom allows"]),
        ("huge_input.keras", ["larger than Loom allows"]),
        ("missing_weight.keras", ["model.weights.h5", "layer 'd2'", "has 2 weights but the file holds 1"]),
        ("wrong_weight_shape.keras", ["weight d1/kernel has shape [3, 4] but layers/dense/vars/0 has shape [3, 5]"]),
        ("truncated_weights.keras", ["model.weights.h5", "the HDF5 file is cut short"]),
        ("truncated_zip.keras", ["truncated_zip.keras", "not a .keras archive"]),
        ("not_a_zip.keras", ["not_a_zip.keras", "not a .keras archive"]),
    ]

    @Test(arguments: cases.map(\.file))
    func badArchivesAreRefused(_ file: String) throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        let fragments = Self.cases.first { $0.file == file }!.fragments
        try Self.expectRefusal(["predict", LoomProcess.fixture("bad/\(file)"), "--input", Self.x, "--output", output.path],
                               [file] + fragments, output: output)
    }

    @Test func badArraysAndPathsAreRefused() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        try Self.expectRefusal(["predict", Self.plain, "--input", LoomProcess.fixture("bad/x_wrong_shape.npy"), "--output", output.path],
                               ["x_wrong_shape.npy", "shape [4, 5] does not fit the model input (None, 3)"], output: output)
        try Self.expectRefusal(["predict", Self.plain, "--input", scratch.appendingPathComponent("absent.npy").path, "--output", output.path],
                               ["absent.npy"], output: output)
        try Self.expectRefusal(["predict", scratch.appendingPathComponent("absent.keras").path, "--input", Self.x, "--output", output.path],
                               ["absent.keras", "no such file"], output: output)
        try Self.expectRefusal(["predict", Self.plain, "--input", Self.x, "--input", Self.x, "--output", output.path],
                               ["has 1 input(s) but 2 --input file(s) were given"], output: output)
        // A random-bytes .npy.
        let junk = scratch.appendingPathComponent("junk.npy")
        try Data((0..<300).map { _ in UInt8.random(in: 0...255) }).write(to: junk)
        try Self.expectRefusal(["predict", Self.plain, "--input", junk.path, "--output", output.path], ["junk.npy"], output: output)
    }

    /// A folder (or a device) given as the model is refused at once: it used to be read as an
    /// endless archive, at 100% CPU forever.
    @Test func aModelPathThatIsNotAFileIsRefusedAtOnce() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        let started = Date()
        for model in [scratch.path, "/dev/null"] {
            try Self.expectRefusal(["predict", model, "--input", Self.x, "--output", output.path], [model, "not"], output: output)
            try Self.expectRefusal(["summary", model], [model, "not"])
            try Self.expectRefusal(["evaluate", model, "--x", Self.x, "--y", Self.x], [model, "not"])
            try Self.expectRefusal(["fit", model, "--x", Self.x, "--y", Self.x, "--epochs", "1", "--batch-size", "2",
                                    "--save", scratch.appendingPathComponent("o.keras").path], [model, "not"])
        }
        try Self.expectRefusal(["summary", scratch.path], ["is a folder, not a .keras file"])
        #expect(Date().timeIntervalSince(started) < 20)
    }

    /// A 100 GB file that is no zip (sparse: it takes no disk) and a FIFO as the model are
    /// refused at once: the first was scanned for minutes with no message.
    @Test func hugeFilesAndPipesAreRefusedAtOnce() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        let huge = scratch.appendingPathComponent("huge.keras"), pipe = scratch.appendingPathComponent("pipe.npy")
        #expect(FileManager.default.createFile(atPath: huge.path, contents: nil) && truncate(huge.path, 100 << 30) == 0)
        #expect(mkfifo(pipe.path, 0o600) == 0)
        let started = Date()
        try Self.expectRefusal(["summary", huge.path], ["huge.keras", "not a .keras archive", "no end-of-archive record"])
        try Self.expectRefusal(["predict", pipe.path, "--input", Self.x, "--output", output.path], ["pipe.npy", "not a regular file"], output: output)
        #expect(Date().timeIntervalSince(started) < 10)
        // Data may come through a pipe (`--input <(command)`), read to its end as cat would.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.x))
        let writer = Thread {
            if let handle = FileHandle(forWritingAtPath: pipe.path) { handle.write(bytes); try? handle.close() }
        }
        writer.start()
        let piped = try LoomProcess.run(["predict", Self.plain, "--input", pipe.path, "--output", output.path])
        let direct = try LoomProcess.run(["predict", Self.plain, "--input", Self.x, "--output", scratch.appendingPathComponent("z.npy").path])
        #expect(piped.status == 0 && direct.status == 0, "\(piped.stderr)")
        #expect(try NPY.read(output.path).scalars == NPY.read(scratch.appendingPathComponent("z.npy").path).scalars)
        #expect(!piped.stderr.contains("waiting"), "\(piped.stderr)")
        // A writer that comes after 3 s: loom says after 2 what it waits for, then reads.
        let late = Thread {
            sleep(3)
            if let handle = FileHandle(forWritingAtPath: pipe.path) { handle.write(bytes); try? handle.close() }
        }
        late.start()
        let waited = try LoomProcess.run(["predict", Self.plain, "--input", pipe.path, "--output", output.path])
        #expect(waited.status == 0 && waited.stderr == "loom: waiting for a writer on the pipe \(pipe.path)\n", "\(waited.stderr)")
    }

    /// Loom writes outputs through a temporary and a rename, which a read-only file's
    /// permissions would not stop: an existing output this user may not write is refused, as
    /// np.save would, and kept. Run as nobody when the tests run as root (who may write anything).
    @Test func aReadOnlyOutputIsNotReplaced() throws {
        // Under /tmp, which anyone may enter (a clone or TMPDIR may be private to root), with its
        // own copies of loom and the inputs for nobody to run and read.
        let scratch = URL(fileURLWithPath: "/tmp/loom-cli-readonly-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let asRoot = getuid() == 0
        try #require(!asRoot || FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) runs loom as nobody")
        #expect(chmod(scratch.path, 0o777) == 0)
        let (binary, model, x) = (scratch.appendingPathComponent("loom"), scratch.appendingPathComponent("m.keras").path, scratch.appendingPathComponent("x.npy").path)
        try FileManager.default.copyItem(at: LoomProcess.executable, to: binary)
        try FileManager.default.copyItem(atPath: Self.plain, toPath: model)
        try FileManager.default.copyItem(atPath: Self.x, toPath: x)
        for path in [model, x] { #expect(chmod(path, 0o644) == 0) }
        let output = scratch.appendingPathComponent("y.npy")
        #expect(FileManager.default.createFile(atPath: output.path, contents: Data("keep".utf8), attributes: [.posixPermissions: 0o444]))
        let launcher = asRoot ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let result = try LoomProcess.run(["predict", model, "--input", x, "--output", output.path], launcher: launcher, binary: binary)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr == "loom predict: \(output.path): cannot write: Permission denied (the file exists and may not be written, so it is not replaced)\n")
        #expect(try String(contentsOf: output, encoding: .utf8) == "keep")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["loom", "m.keras", "x.npy", "y.npy"])
    }

    /// An output that is one of the command's inputs (by path, `./` or a hard link) or another
    /// output is refused with status 2 before anything runs: `--output m.keras` replaced the
    /// model with predictions. `fit --save` may be the model, as Keras's model.save over it.
    @Test func outputsNeverReplaceInputs() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let model = scratch.appendingPathComponent("m.keras").path, x = scratch.appendingPathComponent("x.npy").path
        try FileManager.default.copyItem(atPath: Self.plain, toPath: model)
        try FileManager.default.copyItem(atPath: Self.x, toPath: x)
        let link = scratch.appendingPathComponent("link.npy").path
        #expect(Foundation.link(x, link) == 0)
        let before = try [model, x].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let cases: [([String], String)] = [
            (["--output", model], "--output \(model) is the model \(model): Loom does not write over its inputs"),
            (["--output", scratch.path + "/./x.npy"], "--output \(scratch.path)/./x.npy is the --input file \(x)"),
            (["--output", link], "--output \(link) is the --input file \(x)"),
        ]
        for (output, message) in cases {
            let result = try LoomProcess.run(["predict", model, "--input", x] + output)
            #expect(result.status == 2 && result.stderr.hasPrefix("Error: \(message)"), "\(result.stderr)")
        }
        let twice = try LoomProcess.run(["predict", model, "--input", x, "--output", "y.npy", "--output", "./y.npy"])
        #expect(twice.status == 2 && twice.stderr.hasPrefix("Error: --output ./y.npy and --output y.npy are the same file"), "\(twice.stderr)")
        #expect(try [model, x].map { try Data(contentsOf: URL(fileURLWithPath: $0)) } == before)
    }

    /// A .keras model, or the work asked of it, larger than --max-memory (or the machine) is
    /// refused before the weights or the outputs are allocated, naming the file and the figures.
    @Test func modelsLargerThanTheMemoryAreRefused() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        try Self.expectRefusal(["predict", Self.plain, "--input", Self.x, "--output", output.path, "--max-memory", "100"],
                               ["plain.keras", "d1: its weight kernel of shape [3, 4] takes 48.00 B", "the model's weights need at least 104.00 B",
                                "more than the 100.00 B (--max-memory 100) this machine can give"], output: output)
        try Self.expectRefusal(["summary", Self.plain, "--max-memory", "100"], ["plain.keras", "need at least 104.00 B"])
        // 300,000 samples of 2 outputs, kept twice: 4.58 MB of outputs.
        let many = scratch.appendingPathComponent("many.npy")
        try NPY.write(Tensor.zeros([300_000, 3]), to: many.path)
        try Self.expectRefusal(["predict", Self.plain, "--input", many.path, "--output", output.path, "--max-memory", "3M"],
                               ["plain.keras: plain: running the model at batch 32 needs at least 4.58 MB", "the outputs 4.58 MB",
                                "give fewer samples at a time"], output: output)
        let folder = LoomProcess.fixture("fit/rmsprop_sparse_logits")
        let out = scratch.appendingPathComponent("out.keras")
        try Self.expectRefusal(["fit", folder + "/before.keras", "--x", folder + "/x.npy", "--y", folder + "/y.npy", "--epochs", "1",
                                "--batch-size", "4", "--save", out.path, "--max-memory", "300"],
                               ["before.keras", "training at batch 4 needs at least 1.54 KB", "the weights 228.00 B, 5 copies of the trainable ones (the value, 3 RMSprop slots and a gradient)"], output: out)
        let fits = try LoomProcess.run(["predict", Self.plain, "--input", many.path, "--output", output.path, "--max-memory", "1G"])
        #expect(fits.status == 0, "\(fits.stderr)")
    }

    /// config.json nested 10,000 levels deep is valid JSON, too deep to read: the error says so.
    @Test func deeplyNestedConfigsAreNamedAsSuch() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let model = scratch.appendingPathComponent("deep.keras")
        let archive = try Archive(url: model, accessMode: .create)
        let deep = Data((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8)
        for (name, data) in [("config.json", deep), ("model.weights.h5", Data("x".utf8))] {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none) { position, size in
                data.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
        try Self.expectRefusal(["summary", model.path], ["deep.keras", "config.json is nested 10000 levels deep, more than the 512"])
    }

    /// A label that is not a class of the output is named by its file and index.
    @Test func aLabelOutOfRangeNamesItsFileAndIndex() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let folder = LoomProcess.fixture("fit/rmsprop_sparse_logits")
        let labels = try NPY.read(folder + "/y.npy")
        var scalars = labels.scalars
        scalars[3] = 1e20
        let y = scratch.appendingPathComponent("y.npy").path
        try NPY.write(Tensor(shape: labels.shape, scalars: scalars), to: y)
        let out = scratch.appendingPathComponent("out.keras")
        try Self.expectRefusal(["fit", folder + "/before.keras", "--x", folder + "/x.npy", "--y", y, "--epochs", "1", "--batch-size", "4",
                                "--save", out.path], [y, "label 1e+20 at index 3 is out of range"], output: out)
        try Self.expectRefusal(["evaluate", folder + "/before.keras", "--x", folder + "/x.npy", "--y", y], [y, "at index 3"])
    }

    @Test func fitRefusesModelsWithoutCompileConfig() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("out.keras")
        try Self.expectRefusal(["fit", Self.plain, "--x", Self.x, "--y", Self.x, "--epochs", "1", "--batch-size", "2", "--save", out.path],
                               ["plain.keras", "not compiled"], output: out)
    }

    /// A failed run leaves a file already at the output path as it was.
    @Test func failedRunsKeepExistingOutputs() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("y.npy")
        try Data("earlier results".utf8).write(to: output)
        let result = try LoomProcess.run(["predict", LoomProcess.fixture("bad/missing_weight.keras"), "--input", Self.x, "--output", output.path])
        #expect(result.status == 1)
        #expect(try String(contentsOf: output, encoding: .utf8) == "earlier results")
    }

    @Test func usageErrorsExitWithoutWork() throws {
        let result = try LoomProcess.run(["fit", Self.plain, "--x", Self.x, "--y", Self.x, "--epochs", "1", "--batch-size", "0",
                                          "--save", "/tmp/never.keras"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--batch-size must be at least 1"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.keras"))
    }
}
