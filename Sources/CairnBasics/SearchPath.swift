#if hasFeature(Embedded)
import CLibc
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// One PATH search for the launcher (the app's command against the launch PATH), the sandbox
// (bwrap and runc on the host) and image extensions (RUN commands against the image's PATH).

/// Where `command` is found on `searchPath` (a colon-separated list) as execvp(3) finds it: a
/// command with a `/` is itself; else the first directory holding a regular file of that name
/// that may be executed. An empty entry means the working directory when `emptyIsCurrent`
/// (execvp's rule; host tools leave it out).
public func searchPath(_ command: String, in searchPath: String, emptyIsCurrent: Bool = true) -> String? {
    if command.contains("/") { return command }
    for dir in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
        if dir.isEmpty && !emptyIsCurrent { continue }
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + command
        var st = stat()
        if stat(candidate, &st) == 0, st.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG), access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}
