import Foundation
import LoomData
import LoomTensor
import Testing

/// `loom prep` replaces its `--out` folder whole, so it must never replace anything it did not
/// write: not an input, not a folder of someone else's files, not with --force.
@Suite struct PrepCommandTests {
    /// A small CSV (6 rows, 2 features, a label) in `folder`.
    static func csv(in folder: URL, name: String = "data.csv") throws -> URL {
        let url = folder.appendingPathComponent(name)
        try "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n11,12,1\n".write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func prep(_ input: URL, out: String, _ extra: [String] = []) throws -> LoomProcess.Result {
        try LoomProcess.run(["prep", "csv", input.path, "--labels", "label", "--out", out] + extra)
    }

    @Test func theInputIsNeverTheOutput() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = try Self.csv(in: scratch)
        let before = try Data(contentsOf: input)
        for extra in [[], ["--force"]] {
            let result = try Self.prep(input, out: input.path, extra)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(result.stderr.contains(input.path) && result.stderr.contains("inside it"), "\(result.stderr)")
            #expect(try Data(contentsOf: input) == before, "the input was changed")
        }
        // Nor the folder that holds it.
        let result = try Self.prep(input, out: scratch.path, ["--force"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(try Data(contentsOf: input) == before)
    }

    /// A 16-bit PNG keeps its precision through `loom prep images`: values v / 257 on the
    /// 0-255 scale, between the 8-bit steps, as the decoder (checked against TensorFlow's
    /// 16-bit decode) gives them.
    @Test func sixteenBitPNGsKeepTheirPrecision() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let png = try Data(contentsOf: URL(fileURLWithPath: LoomProcess.fixture("png16/rgb16.png")))
        for (folder, name) in [("a", "1.png"), ("b", "2.png")] {
            let dir = scratch.appendingPathComponent("images/\(folder)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try png.write(to: dir.appendingPathComponent(name))
        }
        let out = scratch.appendingPathComponent("out").path
        let result = try LoomProcess.run(["prep", "images", scratch.appendingPathComponent("images").path, "--out", out,
                                          "--image-size", "9x13", "--color-mode", "rgb"])
        #expect(result.status == 0, "\(result.stderr)")
        let x = try NPY.read(out + "/train-x-00000.npy")
        let expected = try ImageDecoder.decode(png, path: "rgb16.png", channels: 3).tensor
        #expect(x.shape == [2, 9, 13, 3])
        #expect(Array(x.scalars.prefix(expected.count)) == expected.scalars)
        #expect(x.scalars.contains { $0 != $0.rounded() } && x.scalars.allSatisfy { $0 >= 0 && $0 <= 255 })
    }

    /// A file name holding a line break and a terminal escape stays one plain line in the log
    /// and in the error, under both policies: control characters are written as escapes.
    @Test func fileNamesWithControlCharactersStayOneLine() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let png = try Data(contentsOf: URL(fileURLWithPath: LoomProcess.fixture("png16/rgb16.png")))
        for folder in ["a", "b"] {
            let dir = scratch.appendingPathComponent("images/\(folder)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try png.write(to: dir.appendingPathComponent("1.png"))
        }
        try Data("not an image".utf8).write(to: scratch.appendingPathComponent("images/a/bad\nname\u{1B}[31m.png"))
        let images = scratch.appendingPathComponent("images").path
        for policy in ["skip", "fail"] {
            let out = scratch.appendingPathComponent("out-\(policy)").path
            let result = try LoomProcess.run(["prep", "images", images, "--out", out, "--image-size", "4x4", "--on-error", policy])
            #expect(result.status == (policy == "skip" ? 0 : 1), "\(result.stderr)")
            #expect(!result.stderr.contains("\u{1B}"), "\(result.stderr)")
            let mentions = result.stderr.split(separator: "\n").filter { $0.contains("bad") }
            #expect(mentions.count == (policy == "skip" ? 1 : 2) && mentions.allSatisfy { $0.contains("a/bad\\nname\\u001b[31m.png: not a PNG or JPEG image") },
                    "\(result.stderr)")
        }
    }

    /// SIGTERM stops loom prep with status 4 and a line saying where, nothing replaced: at once
    /// while it reads (here a named pipe nobody writes, so reading waits), at the next shard
    /// while it writes, its staging folder removed. It was a silent 143 that left the folder.
    @Test func aSignalStopsCleanly() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        // 100,000 rows in shards of 5: 40,000 files, seconds of writing to interrupt.
        var text = "a,b,y\n"
        for r in 0..<100_000 { text += "\(r),\(r % 7),\(r % 2)\n" }
        let csv = scratch.appendingPathComponent("rows.csv")
        try Data(text.utf8).write(to: csv)
        let out = scratch.appendingPathComponent("out").path
        let writing = try TrainCommandTests.Running(["prep", "csv", csv.path, "--out", out, "--labels", "y", "--shard-size", "5"],
                                                   in: scratch, tag: "writing")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && writing.process.isRunning && !writing.stderr.contains("shard 1 of") { usleep(10_000) }
        kill(writing.process.processIdentifier, SIGTERM)
        #expect(writing.wait() == 4, "\(writing.stderr)")
        #expect(writing.stderr.contains("loom prep: SIGTERM: stopped while writing the shards; nothing was written to \(out)\n"), "\(writing.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["rows.csv", "writing.err", "writing.out"])

        let pipe = scratch.appendingPathComponent("pipe.csv")
        #expect(mkfifo(pipe.path, 0o600) == 0)
        let reading = try TrainCommandTests.Running(["prep", "csv", pipe.path, "--out", out, "--labels", "y"], in: scratch, tag: "reading")
        while Date() < deadline && reading.process.isRunning && !reading.stderr.contains("reading") { usleep(10_000) }
        usleep(200_000)
        kill(reading.process.processIdentifier, SIGTERM)
        #expect(reading.wait() == 4, "\(reading.stderr)")
        #expect(reading.stderr.contains("loom: SIGTERM: stopped while reading the inputs; nothing was written to \(out)\n"), "\(reading.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func aFolderOfOtherFilesIsNeverReplaced() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = try Self.csv(in: scratch)
        let theirs = scratch.appendingPathComponent("theirs")
        try FileManager.default.createDirectory(at: theirs, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: theirs.appendingPathComponent("notes.txt"))
        for extra in [[], ["--force"]] {
            let result = try Self.prep(input, out: theirs.path, extra)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(result.stderr.contains(theirs.path) && result.stderr.contains("not a loom prep output"), "\(result.stderr)")
            #expect(try String(contentsOf: theirs.appendingPathComponent("notes.txt"), encoding: .utf8) == "keep me")
        }
        // A plain file at --out is not replaced either.
        let file = scratch.appendingPathComponent("results.txt")
        try Data("mine".utf8).write(to: file)
        let result = try Self.prep(input, out: file.path, ["--force"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(try String(contentsOf: file, encoding: .utf8) == "mine")
    }

    @Test func itsOwnOutputIsReplacedButNotFilesAddedToIt() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = try Self.csv(in: scratch), out = scratch.appendingPathComponent("prepared")
        #expect(try Self.prep(input, out: out.path).status == 0)
        // Its own earlier output is replaced (other options), and so is an empty folder.
        let again = try Self.prep(input, out: out.path, ["--test", "0.5"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("test-x-00000.npy").path))
        let empty = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(try Self.prep(input, out: empty.path).status == 0)
        // A file someone put into it is not Loom's: the folder is kept as it is.
        try Data("added".utf8).write(to: out.appendingPathComponent("added.txt"))
        let refused = try Self.prep(input, out: out.path, ["--force"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("added.txt"), "\(refused.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("added.txt").path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("manifest.json").path))
    }

    /// Staging folders of runs that are gone are removed; one of a live process is not; an
    /// output a killed run had moved aside comes back.
    @Test func staleStagingFoldersAreCleanedUp() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = try Self.csv(in: scratch), out = scratch.appendingPathComponent("prepared")
        #expect(try Self.prep(input, out: out.path).status == 0)
        // A pid no process has (above the kernel's pid_max), and this test's own (alive).
        let dead = scratch.appendingPathComponent(".prepared.partial-99999999")
        let live = scratch.appendingPathComponent(".prepared.partial-\(getpid())")
        for folder in [dead, live] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(count: 1000).write(to: folder.appendingPathComponent("train-x-00000.npy"))
        }
        // Killed between moving the old output aside and moving the new one in.
        try FileManager.default.moveItem(at: out, to: scratch.appendingPathComponent(".prepared.old-99999998"))
        let result = try Self.prep(input, out: out.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("up to date"), "the earlier output was put back: \(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: live.path))
        #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent(".prepared.old-99999998").path))
    }

    /// With every row bad and the default --on-error skip, the error says what was skipped.
    @Test func allRowsSkippedSaysWhy() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let input = scratch.appendingPathComponent("bad.csv")
        try "a,b,label\n1,x,0\n2\n3,4,5,6\n".write(to: input, atomically: true, encoding: .utf8)
        let result = try Self.prep(input, out: scratch.appendingPathComponent("out").path)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("holds no samples: all 3 input(s) were skipped (first: \(input.path):2: column 'b': cannot read 'x'"),
                "\(result.stderr)")
    }

    /// A full disk mid-write: the system's reason and the path, the earlier output kept, no
    /// Foundation error codes. (A 64 KiB tmpfs, which needs root, as CI has.)
    @Test(.enabled(if: getuid() == 0)) func aFullDiskIsNamedAndKeepsTheEarlierOutput() throws {
        let scratch = try LoomProcess.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let small = try Self.csv(in: scratch)
        let rows = (0..<20_000).map { "\($0),\($0 % 7),\($0 % 2)" }.joined(separator: "\n")
        let large = scratch.appendingPathComponent("large.csv")
        try ("a,b,label\n" + rows + "\n").write(to: large, atomically: true, encoding: .utf8)
        let disk = scratch.appendingPathComponent("disk")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=64k", "tmpfs", disk.path]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mount of a tmpfs failed")
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [disk.path]
            try? umount.run()
            umount.waitUntilExit()
        }
        let out = disk.appendingPathComponent("prepared").path
        #expect(try Self.prep(small, out: out).status == 0)
        let result = try Self.prep(large, out: out)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("No space left on device") && result.stderr.contains("\(out) is kept as it was"), "\(result.stderr)")
        #expect(!result.stderr.contains("Code=") && !result.stderr.contains("NSCocoaErrorDomain"), "\(result.stderr)")
        let again = try Self.prep(small, out: out)
        #expect(again.stdout.contains("up to date"), "the earlier output is whole: \(again.stdout) \(again.stderr)")
        // predict's output (240 KB) does not fit either: named, and no partial file is left.
        let x = scratch.appendingPathComponent("x.npy").path
        try NPY.write(Tensor.zeros([20_000, 3]), to: x)
        let predicted = try LoomProcess.run(["predict", LoomProcess.fixture("bad/plain.keras"), "--input", x, "--output", disk.path + "/y.npy"])
        #expect(predicted.status == 1 && predicted.stderr.contains("y.npy: cannot write: No space left on device"), "\(predicted.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path) == ["prepared"])
    }
}
