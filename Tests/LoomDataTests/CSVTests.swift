import CLoomZlib
import Foundation
import LoomTensor
import Testing
@testable import LoomData

/// CSV files: RFC 4180 quoting, column roles, categories, missing values, several and gzipped
/// files, the same table whatever the number of workers, and every malformed row named by line.
@Suite struct CSVTests {
    /// Writes `text` to a fresh file and returns its path.
    static func file(_ text: String, name: String = "data.csv") throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-csv-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsFeaturesLabelsAndQuotedFields() throws {
        let path = try Self.file("""
            a,"b, with comma",label,note\r
            1.5,-2,0,"say ""hi""\r
            on two lines"\r
            "3e2", 4 ,1,plain\r
            \r
            .25,+7.,0,x\r

            """)
        let table = try CSV.read([path], options: CSVOptions(features: ["a", 1], labels: ["label"]))
        #expect(table.featureNames == ["a", "b, with comma"])
        #expect(table.labelNames == ["label"])
        #expect(table.features.shape == [3, 2])
        #expect(table.features.scalars == [1.5, -2, 300, 4, 0.25, 7])
        #expect(table.labels!.scalars == [0, 1, 0])
        // Every column not a label is a feature by default; a text column can be a category.
        let all = try CSV.read([path], options: CSVOptions(labels: [2], categorical: ["note": nil]))
        #expect(all.featureNames == ["a", "b, with comma", "note"])
        #expect(all.vocabularies["note"] == ["plain", "say \"hi\"\r\non two lines", "x"])
        #expect(all.features.scalars == [1.5, -2, 1, 300, 4, 0, 0.25, 7, 2])
    }

    @Test func headerlessFilesOtherDelimitersAndGivenVocabularies() throws {
        let path = try Self.file("red;1\nblue;2\nred;3\n")
        let table = try CSV.read([path], options: CSVOptions(header: false, delimiter: ";", labels: [0],
                                                            categorical: [0: ["blue", "red"]]))
        #expect(table.featureNames == ["1"])
        #expect(table.labelNames == ["0"])
        #expect(table.labels!.scalars == [1, 0, 1])
        #expect(table.features.scalars == [1, 2, 3])
        let unknown = CSVOptions(header: false, delimiter: ";", categorical: [0: ["blue"]])
        #expect(throws: DataFileError.self) { _ = try CSV.read([path], options: unknown) }
    }

    @Test func missingValuesFollowThePolicy() throws {
        let path = try Self.file("x,y\n1,2\n,3\nNA,4\n5,nan\n")
        do {
            _ = try CSV.read([path])
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "\(path):3: column 'x': missing value")
        }
        let filled = try CSV.read([path], options: CSVOptions(missing: .fill(-1)))
        #expect(filled.features.scalars == [1, 2, -1, 3, -1, 4, 5, -1])
        let skipped = try CSV.read([path], options: CSVOptions(missing: .skipRow))
        #expect(skipped.features.scalars == [1, 2])
        #expect(skipped.skipped.count == 3)
        #expect(skipped.skipped[0].hasPrefix("\(path):3: "))
    }

    @Test func severalFilesAndGzipReadAsOne() throws {
        let first = try Self.file("x,y\n1,2\n3,4\n", name: "a.csv")
        let second = try Self.file("x,y\n5,6\n", name: "b.csv")
        let gzipped = first + ".gz"
        let gz = gzopen(gzipped, "wb")!
        let text = Array("x,y\n7,8\n".utf8)
        _ = text.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
        let table = try CSV.read([first, second, gzipped])
        #expect(table.features.scalars == [1, 2, 3, 4, 5, 6, 7, 8])
        let other = try Self.file("x,z\n1,2\n", name: "c.csv")
        #expect(throws: DataFileError.self) { _ = try CSV.read([first, other]) }
    }

    /// A gzip stream cut short (mid-stream, or where a line ends) or with a wrong checksum is an
    /// error naming the file, not a shorter table.
    @Test func truncatedOrCorruptGzipIsAnError() throws {
        let path = try Self.file("", name: "whole.csv.gz")
        let gz = gzopen(path, "wb")!
        let text = Array(("x,y\n" + (0..<2000).map { "\($0),\($0 * 7 % 13)\n" }.joined()).utf8)
        _ = text.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try CSV.read([path]).rowCount == 2000)
        var damaged: [(String, Data)] = [("mid-stream", whole.prefix(whole.count / 2)), ("no trailer", whole.prefix(whole.count - 8)),
                                         ("half a trailer", whole.prefix(whole.count - 3))]
        var badCRC = whole
        badCRC[badCRC.endIndex - 6] ^= 0x55
        damaged.append(("bad CRC", badCRC))
        for (what, bytes) in damaged {
            let cut = path.replacingOccurrences(of: "whole", with: what.replacingOccurrences(of: " ", with: "-"))
            try bytes.write(to: URL(fileURLWithPath: cut))
            #expect(throws: DataFileError.self, "\(what)") { _ = try CSV.read([cut]) }
            do { _ = try CSV.read([cut]) } catch { #expect("\(error)".hasPrefix(cut), "\(error)") }
        }
    }

    /// inf, -Infinity and 1e999 are not numbers a model can learn from: like a missing value,
    /// an error naming the file, line and column, or the row skipped, or the fill value.
    @Test func nonFiniteNumbersAreBadValues() throws {
        let path = try Self.file("x,y\n1,2\ninf,3\n4,-Infinity\n1e999,5\n6,7\n")
        #expect(throws: DataFileError.self) { _ = try CSV.read([path]) }
        do { _ = try CSV.read([path]) } catch { #expect("\(error)" == "\(path):3: column 'x': non-finite value 'inf'") }
        let skipped = try CSV.read([path], options: CSVOptions(missing: .skipRow))
        #expect(skipped.features.scalars == [1, 2, 6, 7])
        #expect(skipped.skipped.count == 3 && skipped.skipped[2].hasPrefix("\(path):5: "))
        let filled = try CSV.read([path], options: CSVOptions(missing: .fill(0)))
        #expect(filled.features.scalars == [1, 2, 0, 3, 4, 0, 0, 5, 6, 7])
    }

    static let malformed: [(name: String, text: String, message: String)] = [
        ("missing field", "a,b,c\n1,2,3\n4,5\n6,7,8\n", "3: 2 fields where the header has 3: a field is missing"),
        ("extra field", "a,b,c\n1,2,3\n4,5,6,7\n6,7,8\n", "3: 4 fields where the header has 3: an extra field"),
        ("bad number", "a,b,c\n1,2,3\n4,x5,6\n6,7,8\n", "3: column 'b': cannot read 'x5' as a number"),
        ("unterminated quote", "a,b,c\n1,2,3\n6,7,8\n4,\"5,6\n", "4: unterminated quoted field"),
        ("text after a quote", "a,b,c\n1,2,3\n4,\"5\"x,6\n6,7,8\n", "3: unexpected character after a closing quote in field 2"),
    ]

    @Test(arguments: malformed.map(\.name))
    func malformedRowsAreNamedOrSkipped(_ name: String) throws {
        let case_ = Self.malformed.first { $0.name == name }!
        let path = try Self.file(case_.text)
        do {
            _ = try CSV.read([path])
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "\(path):\(case_.message)")
        }
        let table = try CSV.read([path], options: CSVOptions(onError: .skip))
        #expect(table.skipped == ["\(path):\(case_.message)"])
        #expect(table.rowCount == 2)
        #expect(Array(table.features.scalars.prefix(3)) == [1, 2, 3])
    }

    @Test func emptyAndMissingFilesAreErrors() throws {
        let empty = try Self.file("")
        #expect(throws: DataFileError.self) { _ = try CSV.read([empty]) }
        do {
            _ = try CSV.read(["/nonexistent/data.csv"])
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "/nonexistent/data.csv: no such file")
        }
        let headerOnly = try Self.file("a,b\n")
        #expect(try CSV.read([headerOnly]).rowCount == 0)
    }

    /// A NUL byte (a binary file, a UTF-16 export) is refused naming its line, before the rest
    /// of the file is read: 100 GB of NUL bytes were parsed for minutes as one header line.
    /// A text file larger than the machine can give is refused before it is read.
    @Test func binaryAndHugeFilesAreRefusedAtOnce() throws {
        let utf16 = try Self.file("")
        try Data("a,b\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }).write(to: URL(fileURLWithPath: utf16))
        #expect(throws: DataFileError(path: utf16 + ":1", message: "holds a NUL byte (byte 1), so it is not a text file: a binary file, or UTF-16 text (save it as UTF-8)")) {
            _ = try CSV.read([utf16])
        }
        let late = try Self.file("a,b\n1,2\n3,\u{0}\n")
        #expect(throws: DataFileError(path: late + ":3", message: "holds a NUL byte (byte 10), so it is not a text file: a binary file, or UTF-16 text (save it as UTF-8)")) {
            _ = try CSV.read([late])
        }
        // 1 TB, sparse (it takes no disk), starting with 80 KB of text.
        let huge = try Self.file("a,b\n" + String(repeating: "1,2\n", count: 20_000))
        #expect(truncate(huge, 1 << 40) == 0)
        let started = Date()
        do {
            _ = try CSV.read([huge])
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix(huge + ": is 1.00 TB, more than the "), "\(error)")
            #expect("\(error)".hasSuffix(" this machine can give to read it into memory"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 2)
    }

    /// A file large enough to be split, with quoted fields (some holding line breaks) across
    /// the split points: the table is the same for any number of workers, and the line numbers
    /// of errors are the file's.
    @Test func workersSplitFilesWithoutChangingTheTable() throws {
        var text = "id,value,name\n"
        var random = StreamRandom(seed: 4, stream: 0)
        for row in 0..<20_000 {
            let value = Float.random(in: -1000...1000, using: &random)
            let name = row % 7 == 0 ? "\"multi\nline \"\"\(row % 5)\"\"\"" : "n\(row % 5)"
            text += "\(row),\(value),\(name)\n"
        }
        text += "20000,oops,n1\n"
        let path = try Self.file(text)
        let options = { (w: Int) in CSVOptions(categorical: ["name": nil], onError: .skip, workers: w) }
        let one = try CSV.read([path], options: options(1))
        #expect(one.rowCount == 20_000)
        // The header, 20,000 rows, one more line for every seventh row's quoted line break.
        let badLine = 1 + 20_000 + (20_000 + 6) / 7 + 1
        #expect(one.skipped == ["\(path):\(badLine): column 'value': cannot read 'oops' as a number"])
        for workers in [2, 3, 4] {
            let many = try CSV.read([path], options: options(workers))
            #expect(many.features.scalars == one.features.scalars)
            #expect(many.skipped == one.skipped)
            #expect(many.vocabularies == one.vocabularies)
        }
    }

    /// The parser's numbers are the correctly rounded float32 values, as strtof gives them.
    @Test func numbersRoundAsStrtofDoes() throws {
        var random = StreamRandom(seed: 11, stream: 0)
        var texts: [String] = ["0", "-0", "1e-45", "3.4028235e38", "3.5e38", "1e-40", "123456789012345678901234",
                               "0.000000000000000000001", "16777217", "9007199254740993", "1.00000005960464477539062",
                               "7.038531e-26", "4.7019774e-38", "1.17549435e-38", "+12.5e+3", "5.", ".5"]
        for _ in 0..<20_000 {
            let digits = Int.random(in: 1...20, using: &random)
            let mantissa = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &random))) })
            let point = Int.random(in: 0...digits, using: &random)
            var text = String(mantissa.prefix(point)) + "." + String(mantissa.dropFirst(point))
            if Bool.random(using: &random) { text += "e\(Int.random(in: -40...38, using: &random))" }
            texts.append(text)
        }
        for text in texts {
            let expected = strtof(text, nil)
            let bytes = Array(text.utf8)
            let fused = bytes.withUnsafeBufferPointer { scanNumber($0.baseAddress!, 0, bytes.count) }
            let general = bytes.withUnsafeBufferPointer { parseNumber($0.baseAddress!, bytes.count) }
            if let (value, end) = fused {
                #expect(value.bitPattern == expected.bitPattern && end == bytes.count, "\(text): \(value) vs \(expected)")
            }
            guard case let .value(v) = general else { Issue.record("\(text) not read"); continue }
            #expect(v.bitPattern == expected.bitPattern, "\(text): \(v) vs \(expected)")
        }
    }

    @Test func tablesBecomeDatasets() throws {
        let path = try Self.file("a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
        let table = try CSV.read([path], options: CSVOptions(labels: ["y"]))
        let batches = try Dataset.csv(table).batch(2).collect()
        #expect(batches.count == 2)
        #expect(batches[0].inputs[0].scalars == [1, 2, 3, 4])
        #expect(batches[0].targets[0].shape == [2, 1])
        #expect(batches[1].targets[0].scalars == [0])
    }
}

/// The sources and the adapt pass that complete the CSV and array inputs.
@Suite struct TabularSourceTests {
    @Test func standardizationLearnsEachColumn() throws {
        let path = try CSVTests.file("a,b,y\n1,10,0\n3,10,1\n5,40,0\n")
        let table = try CSV.read([path], options: CSVOptions(labels: ["y"]))
        let stats = ColumnStatistics.adapt(table)
        #expect(stats.mean == [3, 20])
        #expect(abs(stats.std[0] - (8 as Float / 3).squareRoot()) < 1e-6)
        let standardized = try stats.standardized(table)
        #expect(abs(standardized.features.scalars[0] + 1.2247449) < 1e-5)
        #expect(abs(standardized.features.scalars.reduce(0, +)) < 1e-5)
        let other = try CSV.read([try CSVTests.file("a,c,y\n1,2,0\n")], options: CSVOptions(labels: ["y"]))
        #expect(throws: DataFileError.self) { _ = try stats.standardized(other) }
    }

    @Test func npyAndIDXFilesBecomeDatasets() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-npy-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let x = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]), y = Tensor(shape: [3], scalars: [0, 1, 0])
        try NPY.write(x, to: folder.appendingPathComponent("x.npy").path)
        try NPY.write(y, to: folder.appendingPathComponent("y.npy").path)
        let samples = try Dataset.npy(inputs: [folder.appendingPathComponent("x.npy").path],
                                      targets: [folder.appendingPathComponent("y.npy").path]).collect()
        #expect(samples.map { $0.inputs[0].scalars } == [[1, 2], [3, 4], [5, 6]])
        #expect(samples.map { $0.targets[0].scalars } == [[0], [1], [0]])
        let mnist = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../datasets/mnist").standardized
        let digits = try Dataset.idx(images: mnist.appendingPathComponent("t10k-images-idx3-ubyte.gz").path,
                                     labels: mnist.appendingPathComponent("t10k-labels-idx1-ubyte.gz").path)
        #expect(digits.count == 10_000)
        let first = try digits.take(1).collect()[0]
        #expect(first.inputs[0].shape == [28, 28] && first.targets[0].scalars == [7])
    }
}
