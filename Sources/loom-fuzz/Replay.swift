import Foundation

#if !LOOM_FUZZ
/// Without libFuzzer (a plain build): runs each file named on the command line through the
/// target, as libFuzzer does with a corpus, so the corpora replay in an ordinary build too.
@main struct Replay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            let files = isFolder.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                FuzzTarget.selected.run(data)
                count += 1
            }
        }
        print("loom-fuzz \(FuzzTarget.selected.rawValue): \(count) input(s) replayed without a crash")
    }
}
#endif
