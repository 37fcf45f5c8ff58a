import Buildpacks

/// Errors of the platform layer: each case names what it is about (the image, file, label,
/// argument or path) and carries the underlying error where there is one; the description is
/// one line a user can act on.
public enum PlatformError: Error, CustomStringConvertible, Sendable {
    /// An image or blob the command needs is not in the store; `hint` says how to get it.
    case notInStore(what: String, reference: String, hint: String? = nil, cause: (any Error)? = nil)
    /// A file the command was pointed at does not exist.
    case missingFile(what: String, path: String)
    /// A directory the command was pointed at does not exist or is a file.
    case notADirectory(what: String, path: String)
    /// A file exists but its content is not what is expected (which field, what was expected).
    case invalidFile(path: String, reason: String, cause: (any Error)? = nil)
    /// An error met while working through a file (builder.toml, package.toml): the file, then the error.
    indirect case inFile(path: String, PlatformError)
    /// An image's label is missing or not of the expected shape.
    case invalidLabel(image: String, label: String, reason: String, cause: (any Error)? = nil)
    /// An image lacks something the command needs (a process type, a user, a layer).
    case image(reference: String, reason: String)
    /// A buildpack, extension or buildpackage reference that cannot be used.
    case module(reference: String, reason: String, cause: (any Error)? = nil)
    /// A command-line argument or option value that cannot be used.
    case invalidArgument(String, reason: String, cause: (any Error)? = nil)
    /// An option that needs root, and why.
    case needsRoot(option: String, reason: String)
    /// A builder's lifecycle that cannot do what the command needs.
    case incompatibleLifecycle(builder: String, reason: String)
    /// No static lifecycle/launcher binaries where they were looked for.
    case lifecycleBinariesMissing(searched: [String])
    /// A lifecycle phase (or the creator) exited with `status`.
    case lifecycleFailed(phase: String?, status: Int32)
    /// `what` ran longer than `option` allows and was stopped.
    case timedOut(what: String, option: String)
    /// The lifecycle exited 0 without writing what it should have.
    case lifecycleOutputMissing(path: String)
    /// Extending the build or run image with extension Dockerfiles failed.
    case extensionFailed(kind: String, cause: any Error)
    /// An external tool failed; `output` is what it printed, `hint` what to check.
    case toolFailed(command: String, output: String, hint: String)
    /// A file system call failed.
    case io(operation: String, path: String, reason: String)
    /// A document larger than Cairn reads into memory.
    case tooLarge(what: String, limitMiB: Int)

    public var description: String {
        switch self {
        case .notInStore(let what, let reference, let hint, let cause):
            return "\(what) \(reference) is not in the store" + Self.paren(cause) + (hint.map { "; " + $0 } ?? "")
        case .missingFile(let what, let path):
            return "\(what) \(path) does not exist"
        case .notADirectory(let what, let path):
            return "\(what) \(path) does not exist or is not a directory"
        case .invalidFile(let path, let reason, let cause):
            return "\(path): \(reason)" + Self.colon(cause)
        case .inFile(let path, let error):
            return "\(path): \(error.description)"
        case .invalidLabel(let image, let label, let reason, let cause):
            return "\(image): label \(label) \(reason)" + Self.colon(cause)
        case .image(let reference, let reason):
            return "\(reference) \(reason)"
        case .module(let reference, let reason, let cause):
            return "\(reference): \(reason)" + Self.colon(cause)
        case .invalidArgument(let argument, let reason, let cause):
            return "\(argument): \(reason)" + Self.colon(cause)
        case .needsRoot(let option, let reason):
            return "\(option) needs root (\(reason))"
        case .incompatibleLifecycle(let builder, let reason):
            return "the lifecycle of \(builder) \(reason)"
        case .lifecycleBinariesMissing(let searched):
            return "no static lifecycle/launcher found (looked in \(searched.joined(separator: ", "))); run scripts/build-static or set CAIRN_LIFECYCLE_BIN"
        case .lifecycleFailed(let phase, let status):
            return (phase.map { $0 + ": " } ?? "") + Self.summary(status)
        case .timedOut(let what, let option):
            return "\(what) ran longer than \(option) allows: stopped (its processes killed); the store keeps the previous image"
        case .lifecycleOutputMissing(let path):
            return "the lifecycle reported success but wrote no image to \(path)"
        case .extensionFailed(let kind, let cause):
            return "extending the \(kind) image: \(cause)"
        case .toolFailed(let command, let output, let hint):
            return "\(command) failed: \(output) (\(hint))"
        case .io(let operation, let path, let reason):
            return "cannot \(operation) \(path): \(reason)"
        case .tooLarge(let what, let limit):
            return "\(what) is larger than \(limit) MiB"
        }
    }

    /// The underlying error, when the case carries one.
    public var cause: (any Error)? {
        switch self {
        case .notInStore(_, _, _, let c), .invalidFile(_, _, let c), .invalidLabel(_, _, _, let c), .module(_, _, let c),
             .invalidArgument(_, _, let c):
            return c
        case .inFile(_, let e): return e
        case .extensionFailed(_, let c): return c
        default: return nil
        }
    }

    /// What a lifecycle exit status means, in platform.md's exit code ranges.
    static func summary(_ status: Int32) -> String {
        switch status {
        case LifecycleExit.detectFailedNoError: return "build failed: no buildpack group passed detection (exit 20)"
        case LifecycleExit.detectFailedWithError: return "build failed: no group passed detection and a buildpack's detect errored (exit 21)"
        case LifecycleExit.buildpackBuildError: return "build failed: a buildpack's bin/build failed (exit 51); its output is above"
        case LifecycleExit.incompatiblePlatformAPI: return "build failed: the builder's lifecycle does not support this platform API (exit 11)"
        case LifecycleExit.incompatibleBuildpackAPI: return "build failed: a buildpack declares an unsupported buildpack API (exit 12)"
        case 30...39: return "build failed while analyzing (exit \(status))"
        case 40...49: return "build failed while restoring (exit \(status))"
        case 50...59: return "build failed in the build phase (exit \(status))"
        case 60...69: return "build failed while exporting (exit \(status))"
        case 128...: return "build interrupted (signal \(status - 128))"
        default: return "build failed (lifecycle exit \(status))"
        }
    }

    private static func paren(_ cause: (any Error)?) -> String { cause.map { " (\($0))" } ?? "" }
    private static func colon(_ cause: (any Error)?) -> String { cause.map { ": \($0)" } ?? "" }
}
