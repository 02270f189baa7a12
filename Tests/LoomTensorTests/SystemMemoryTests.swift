import Foundation
import Testing
@testable import LoomTensor

/// What the machine can give, read as the kernel writes it (/proc/meminfo, cgroup v1 and v2
/// files), and the sizes --max-memory takes.
@Suite struct SystemMemoryTests {
    @Test func memAvailableIsReadInBytes() {
        let meminfo = "MemTotal:       24683784 kB\nMemFree:         1000000 kB\nMemAvailable:   23829032 kB\nBuffers: 1 kB\n"
        #expect(MemoryLimit.memAvailable(meminfo: meminfo) == 23_829_032 * 1024)
        #expect(MemoryLimit.memAvailable(meminfo: "MemTotal: 5 kB\n") == nil)
    }

    @Test func cgroupFoldersGoFromTheProcessUpToTheMount() {
        let v1 = "9:name=systemd:/\n4:memory:/jobs/a\n3:cpu,cpuacct:/jobs/a\n"
        #expect(MemoryLimit.cgroupFolders(membership: v1, root: "/cg").map(\.folder) == ["/cg/memory/jobs/a", "/cg/memory/jobs", "/cg/memory"])
        #expect(MemoryLimit.cgroupFolders(membership: v1, root: "/cg").allSatisfy { $0.version == 1 })
        let v2 = "0::/user.slice/job.scope\n"
        #expect(MemoryLimit.cgroupFolders(membership: v2, root: "/cg").map(\.folder) == ["/cg/user.slice/job.scope", "/cg/user.slice", "/cg"])
        #expect(MemoryLimit.cgroupFolders(membership: "0::/\n", root: "/cg").map(\.folder) == ["/cg"])
    }

    @Test func cgroupRoomIsTheLimitLessUsePlusInactiveCache() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cgroup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: folder.appendingPathComponent(name)) }
        try write("memory.max", "4294967296\n")
        try write("memory.current", "1073741824\n")
        try write("memory.stat", "anon 900000000\nfile 200000000\ninactive_file 100000000\nactive_file 5\n")
        let room = try #require(MemoryLimit.cgroupRoom((folder.path, 2)))
        #expect(room.bytes == 4_294_967_296 - 1_073_741_824 + 100_000_000)
        #expect(room.source == "the limit in \(folder.path)/memory.max")
        try write("memory.max", "max\n")
        #expect(MemoryLimit.cgroupRoom((folder.path, 2)) == nil)
        // v1 writes "no limit" as a page-rounded 2^63 - 1.
        try write("memory.limit_in_bytes", "9223372036854771712\n")
        #expect(MemoryLimit.cgroupRoom((folder.path, 1)) == nil)
        try write("memory.limit_in_bytes", "2000\n")
        try write("memory.usage_in_bytes", "5000\n")
        #expect(MemoryLimit.cgroupRoom((folder.path, 1))?.bytes == 0)
    }

    @Test func theMachineHasAFigure() throws {
        let limit = try #require(MemoryLimit.machine())
        #expect(limit.bytes > 0)
    }

    @Test func sizesAreReadInBinaryUnits() {
        #expect(MemoryLimit.parseSize("1073741824") == 1 << 30)
        #expect(MemoryLimit.parseSize("8G") == 8 << 30)
        #expect(MemoryLimit.parseSize("8GB") == 8 << 30)
        #expect(MemoryLimit.parseSize("8gib") == 8 << 30)
        #expect(MemoryLimit.parseSize("512M") == 512 << 20)
        #expect(MemoryLimit.parseSize("1.5k") == 1536)
        #expect(MemoryLimit.parseSize("2 T") == 2 << 40)
        for bad in ["", "lots", "-1G", "0", "8X", "1e3", "G", "99999999999T"] {
            #expect(MemoryLimit.parseSize(bad) == nil, "\(bad)")
        }
        #expect(readableBytes(2_678_824) == "2.55 MB")
    }
}
