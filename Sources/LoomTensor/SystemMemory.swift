import Foundation

/// How many bytes the process may still take, and where that figure comes from: a batch job
/// that asks for more is refused with both, instead of growing until the kernel kills it.
public struct MemoryLimit: Sendable, Equatable, CustomStringConvertible {
    public var bytes: Int
    /// Where the figure comes from: "MemAvailable in /proc/meminfo", the cgroup's limit file,
    /// or the command's option.
    public var source: String

    public init(bytes: Int, source: String) {
        (self.bytes, self.source) = (bytes, source)
    }

    public var description: String { "\(readableBytes(bytes)) (\(source))" }

    /// What this machine can give now: the smaller of the kernel's MemAvailable and the room
    /// left under the memory cgroup's limit (v2 or v1) at every level up from the process's;
    /// nil when neither can be read.
    public static func machine() -> MemoryLimit? {
        var best: MemoryLimit? = nil
        func consider(_ candidate: MemoryLimit?) {
            guard let candidate else { return }
            if best == nil || candidate.bytes < best!.bytes { best = candidate }
        }
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8), let bytes = memAvailable(meminfo: text) {
            consider(MemoryLimit(bytes: bytes, source: "MemAvailable in /proc/meminfo"))
        }
        let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        for folder in cgroupFolders(membership: membership) {
            consider(cgroupRoom(folder))
        }
        return best
    }

    /// The `MemAvailable:` line of /proc/meminfo, in bytes.
    static func memAvailable(meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kB = Int(fields[1]) else { return nil }
            return kB * 1024
        }
        return nil
    }

    /// The memory cgroup folders that bound this process, its own first, then each parent up
    /// to the mount point: v2 (`0::/path`) under /sys/fs/cgroup, v1 (`N:memory:/path`) under
    /// /sys/fs/cgroup/memory. In a container the path may not exist in its view of the tree;
    /// the levels that do exist are read.
    static func cgroupFolders(membership: String, root: String = "/sys/fs/cgroup") -> [(folder: String, version: Int)] {
        var folders: [(String, Int)] = []
        for line in membership.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let (mount, version): (String, Int)
            if parts[0] == "0" && parts[1].isEmpty {
                (mount, version) = (root, 2)
            } else if parts[1].split(separator: ",").contains("memory") {
                (mount, version) = (root + "/memory", 1)
            } else {
                continue
            }
            var path = String(parts[2])
            while true {
                let folder = mount + (path == "/" ? "" : path)
                if !folders.contains(where: { $0.0 == folder }) { folders.append((folder, version)) }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        return folders
    }

    /// The room left under one cgroup's limit: limit - usage + its inactive file cache (which
    /// the kernel reclaims before it kills), or nil when the folder has no limit.
    static func cgroupRoom(_ cgroup: (folder: String, version: Int)) -> MemoryLimit? {
        let (limitFile, usageFile, inactiveKey) = cgroup.version == 2
            ? ("memory.max", "memory.current", "inactive_file")
            : ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        func read(_ name: String) -> String? {
            (try? String(contentsOfFile: cgroup.folder + "/" + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // "max" (v2) or a figure near 2^63 (v1) means no limit.
        guard let limitText = read(limitFile), let limit = Int(limitText), limit < 1 << 60 else { return nil }
        let usage = read(usageFile).flatMap { Int($0) } ?? 0
        let inactive = read("memory.stat").flatMap { statValue($0, inactiveKey) } ?? 0
        return MemoryLimit(bytes: Swift.max(0, limit - usage + inactive), source: "the limit in \(cgroup.folder)/\(limitFile)")
    }

    /// The value of `key` in a memory.stat file ("key value" lines).
    static func statValue(_ stat: String, _ key: String) -> Int? {
        for line in stat.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key { return Int(fields[1]) }
        }
        return nil
    }

    /// A size as `--max-memory` takes it: bytes, or a number with K, M, G or T (binary units,
    /// as Slurm and Docker read them; "GB", "GiB" and lower case alike). Nil when malformed.
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let number = t.prefix { $0.isNumber || $0 == "." }
        var unit = t.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("b") { unit.removeLast() }
        let scales: [String: Double] = ["": 1, "k": 0x1p10, "m": 0x1p20, "g": 0x1p30, "t": 0x1p40]
        guard let value = Double(number), value > 0, let scale = scales[unit] else { return nil }
        let bytes = value * scale
        guard bytes >= 1, bytes < 0x1p62 else { return nil }
        return Int(bytes)
    }
}

/// 2550000 -> "2.43 MB": Keras's readable_memory_size, with 1024 steps.
public func readableBytes(_ bytes: Int) -> String {
    var size = Double(bytes)
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024 < 1 { return String(format: "%.2f %@", size, unit) }
        size /= 1024
    }
    return String(format: "%.2f PB", size)
}
