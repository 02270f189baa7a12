import Dispatch
import Foundation
import LoomTensor
import Synchronization

/// How `loom train` and `loom prep` end, as their exit status (documented in the README).
public enum JobExit: Int32, Sendable, CaseIterable {
    /// The job ran to the end (or had already).
    case success = 0
    /// The job started and failed: bad data, a training error, a file that could not be written.
    case failed = 1
    /// The command line or the job file is wrong; nothing was done.
    case usage = 2
    /// Another run holds the run folder's lock; nothing was done.
    case locked = 3
    /// SIGTERM or SIGINT: a checkpoint was written; running the job again resumes it.
    case interrupted = 4
}

/// A job that ended with a given exit status and a message for stderr.
public struct JobEnded: Error, CustomStringConvertible {
    public let exit: JobExit
    public let message: String
    public init(_ exit: JobExit, _ message: String) { (self.exit, self.message) = (exit, message) }
    public var description: String { message }
}

/// A run's folder, locked for as long as this object lives (or the process does): the lock is
/// an flock on `.lock`, which the kernel drops when the process dies, SIGKILL included.
public final class RunFolder {
    public let url: URL
    private let lockDescriptor: Int32

    /// Creates the folder if needed and takes its lock, or throws `JobEnded(.locked)` naming
    /// the process that holds it.
    public init(_ path: String) throws {
        url = URL(fileURLWithPath: path).standardizedFileURL
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw JobEnded(.usage, "\(url.path): is a file, not a run folder: choose another --run-dir")
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw JobEnded(.failed, "\(url.path): cannot create the run folder: \(describeFileError(error))")
        }
        let lockPath = url.appendingPathComponent(".lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JobEnded(.failed, "\(lockPath): cannot open the lock file: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, 32, 0)
            close(fd)
            let holder = String(decoding: buffer.prefix(Swift.max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw JobEnded(.locked, "\(url.path) is in use by another run (process \(holder.isEmpty ? "unknown" : holder)); "
                + "it holds the folder's lock until it ends")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        lockDescriptor = fd
        // Half-written files of a run killed while writing (their rename never came): with the
        // lock held, no live run is writing them.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] where name.contains(".partial-") {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(name))
        }
    }

    deinit { close(lockDescriptor) }

    /// The path of a file in the folder.
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// Writes a file of the folder through a temporary file and a rename, so a reader or a
    /// resumed run never sees half of it.
    public func write(_ text: String, to name: String) throws {
        try writeAtomically(Data(text.utf8), to: path(name))
    }

    /// Removes a file of the folder if it is there.
    public func remove(_ name: String) throws {
        guard exists(name) else { return }
        do {
            try FileManager.default.removeItem(atPath: path(name))
        } catch {
            throw JobEnded(.failed, "\(path(name)): cannot remove: \(describeFileError(error))")
        }
    }
}

/// Writes `data` beside `path`, flushes it to disk and renames it into place.
public func writeAtomically(_ data: Data, to path: String) throws {
    do throws(FileWriteFailure) {
        try replaceFile(path, with: data, flush: true)
    } catch {
        throw JobEnded(.failed, "\(path): \(error.reason)")
    }
}

/// SIGTERM and SIGINT turned into a flag the trainer reads between batches; a second signal
/// ends the process at once (exit status `interrupted`). install and uninstall are called from
/// the thread that runs the job (the sources list is theirs alone); handlers only touch the flag.
public final class InterruptSignals: Sendable {
    private let received = SystemLock<Int32?>(nil)
    /// While set, a signal ends the process at once with this line: phases that write nothing
    /// (loading, building, evaluating) have no checkpoint to take and cannot poll a flag.
    private let stopAtOnce = SystemLock<String?>(nil)
    private nonisolated(unsafe) var sources: [DispatchSourceSignal] = []

    public init() {}

    /// From now on a signal ends the process at once, saying it stopped `while` this (e.g.
    /// "loading the data") and `then` what that means for the user; nil: the flag is set for
    /// the job to read at its next safe point.
    public func stopAtOnce(while phase: String?, then advice: String = "") {
        stopAtOnce.withLock { $0 = phase.map { "while \($0); \(advice)" } }
    }

    /// The signal received, if one was.
    public var signal: Int32? { received.withLock { $0 } }

    /// Starts catching SIGTERM and SIGINT.
    public func install() {
        for number in [SIGTERM, SIGINT] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if let phase = stopAtOnce.withLock({ $0 }) {
                    FileHandle.standardError.write(Data("loom: \(InterruptSignals.name(number)): stopped \(phase)\n".utf8))
                    _exit(JobExit.interrupted.rawValue)
                }
                let first = received.withLock { r -> Bool in
                    defer { if r == nil { r = number } }
                    return r == nil
                }
                if !first {
                    FileHandle.standardError.write(Data("loom: second signal: stopping at once, without a new checkpoint\n".utf8))
                    _exit(JobExit.interrupted.rawValue)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Gives the signals their default actions back.
    public func uninstall() {
        for source in sources { source.cancel() }
        sources = []
        Glibc.signal(SIGTERM, SIG_DFL)
        Glibc.signal(SIGINT, SIG_DFL)
    }

    static func name(_ number: Int32) -> String { number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : "signal \(number)" }
}
