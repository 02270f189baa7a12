import Foundation
import Glibc
import LoomLayers

/// Where `loom prep` may write: the rules that keep it from deleting anything it did not write.
/// An `--out` that exists is replaced only when it is an earlier prep output (its manifest says
/// so and it holds nothing the manifest does not list); an input is never inside it; staging
/// folders of runs that died are cleaned up (and an output caught mid-swap is put back).
enum PrepOutput {
    /// The manifest's `format`: what marks a folder as loom prep's own.
    static let format = "loom-prep/1"

    /// Throws a usage error naming the path when `out` may not be replaced, or when an input
    /// lies inside it (or it inside an input folder).
    static func check(_ out: URL, inputs: [String]) throws {
        let target = canonical(out.path)
        for input in inputs {
            let path = canonical(input)
            if path == target || path.hasPrefix(target + "/") {
                throw JobEnded(.usage, "--out \(out.path): the input \(input) is inside it, and the output replaces it whole; "
                    + "choose another --out")
            }
            if isDirectory(path), target.hasPrefix(path + "/") {
                throw JobEnded(.usage, "--out \(out.path) is inside the input folder \(input); choose an --out outside it")
            }
        }
        var info = stat()
        guard lstat(out.path, &info) == 0 else { return }
        let notOurs = "\(out.path) exists and is not a loom prep output"
        let advice = "; loom prep replaces only its own earlier output (even with --force): remove it or choose another --out"
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw JobEnded(.usage, notOurs + advice) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        if entries.isEmpty { return }
        guard let listed = manifest(out)?.files else {
            throw JobEnded(.usage, notOurs + " (it has no loom prep manifest.json)" + advice)
        }
        // Every file there must be one the manifest lists: anything else was put there by someone else.
        var allowed: Set<String> = [Prep.manifestName]
        for file in listed {
            var parts = file.split(separator: "/").map(String.init)
            allowed.insert(parts.joined(separator: "/"))
            while parts.count > 1 { parts.removeLast(); allowed.insert(parts.joined(separator: "/")) }
        }
        guard let walker = FileManager.default.enumerator(atPath: out.path) else { throw JobEnded(.usage, notOurs + advice) }
        while let relative = walker.nextObject() as? String {
            if !allowed.contains(relative) {
                throw JobEnded(.usage, "\(out.path) holds \(relative), which loom prep did not write; it replaces the folder whole, "
                    + "so move that away or choose another --out")
            }
        }
    }

    /// The prep manifest in `folder` and the files it lists, or nil when there is no such manifest.
    static func manifest(_ folder: URL) -> (manifest: [String: JSONValue], files: [String])? {
        let path = folder.appendingPathComponent(Prep.manifestName).path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), case let .object(manifest)? = try? JSONValue.parse(text),
              manifest["format"] == .string(format), case let .array(files)? = manifest["files"] else { return nil }
        let names = files.compactMap { if case let .string(f) = $0 { return f }; return nil }
        return names.count == files.count ? (manifest, names) : nil
    }

    /// The staging (`.NAME.partial-PID`) and replaced (`.NAME.old-PID`) folders beside `out`.
    static func staging(_ out: URL, pid: Int32 = getpid()) -> URL { sibling(out, "partial", pid) }
    static func replaced(_ out: URL, pid: Int32 = getpid()) -> URL { sibling(out, "old", pid) }

    /// Removes the staging folders that runs which are gone left beside `out`; an earlier output
    /// that a killed run had moved aside but not yet replaced is moved back first.
    static func cleanUp(_ out: URL, log: (String) -> Void) {
        let parent = out.deletingLastPathComponent()
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: parent.path) else { return }
        for name in names.sorted() {
            guard let (kind, pid) = parse(name, output: out.lastPathComponent), pid != getpid(), !isAlive(pid) else { continue }
            let url = parent.appendingPathComponent(name)
            if kind == "old", !fm.fileExists(atPath: out.path), rename(url.path, out.path) == 0 {
                log("\(out.path): restored the earlier output that a stopped run (process \(pid)) had moved aside")
                continue
            }
            if (try? fm.removeItem(at: url)) != nil { log("removed \(url.path), left by a stopped run (process \(pid))") }
        }
    }

    private static func sibling(_ out: URL, _ kind: String, _ pid: Int32) -> URL {
        out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).\(kind)-\(pid)")
    }

    /// ("partial" or "old", pid) when `name` is one of this output's staging names.
    private static func parse(_ name: String, output: String) -> (String, Int32)? {
        for kind in ["partial", "old"] {
            let prefix = ".\(output).\(kind)-"
            if name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count)), pid > 0 { return (kind, pid) }
        }
        return nil
    }

    private static func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The absolute path with symbolic links resolved; for a path that does not exist yet, its
    /// deepest existing ancestor resolved and the rest appended.
    static func canonical(_ path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if let resolved = realpath(absolute, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        let url = URL(fileURLWithPath: absolute)
        let parent = url.deletingLastPathComponent().path
        guard parent != absolute else { return absolute }
        return (canonical(parent) as NSString).appendingPathComponent(url.lastPathComponent)
    }
}
