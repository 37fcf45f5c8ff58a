import CNBCore

#if hasFeature(Embedded)
import CLibc
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The few system calls the launcher needs, over Glibc only (no Foundation: the launcher is
/// linked statically into every app image and must start fast).
enum Posix {
    static func readFile(_ path: String) -> String? {
        #if hasFeature(Embedded)
        let fd = cairn_open(path, O_RDONLY | O_CLOEXEC)
        #else
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    static func readAll(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    enum Kind { case file, directory, other, missing }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & mode_t(S_IFMT) {
        case mode_t(S_IFREG): return .file
        case mode_t(S_IFDIR): return .directory
        default: return .other
        }
    }

    /// Entry names of a directory, sorted ascending by bytes; empty when it does not exist.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func environment() -> [(String, String)] {
        var out: [(String, String)] = []
        // Optional in the Embedded build's C import, not in Glibc's overlay.
        var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let q = p, let entry = q.pointee {
            if let pair = EnvEntry.split(String(cString: entry)) { out.append(pair) }
            p = q + 1
        }
        return out
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Runs `path` with `args` and `env` in the current directory, its fd 3 a pipe whose contents
    /// are returned; stdout and stderr are inherited. Returns nil with a message on failure.
    static func runCapturingFD3(_ path: String, args: [String], env: [String]) -> (status: Int32, output: String, error: String?) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return (-1, "", "pipe: \(errorText(errno))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        var pid = pid_t()
        let rc = withCStrings([path] + args) { argv in
            withCStrings(env) { envp in posix_spawn(&pid, path, &actions, nil, argv, envp) }
        }
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            return (-1, "", errorText(rc))
        }
        let output = readAll(fds[0])
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output, nil)
    }

    /// Replaces this process. Returns only on failure, with errno's text.
    static func exec(_ path: String, args: [String], env: [String]) -> String {
        _ = withCStrings(args) { argv in withCStrings(env) { envp in execve(path, argv, envp) } }
        return errorText(errno)
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    static func writeError(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
