import Buildpacks
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Errors of the lifecycle phases. Each carries the platform.md exit code it maps to.
public enum LifecycleError: Error, Hashable, Sendable, CustomStringConvertible {
    case unsupportedPlatformAPI(String)
    case unsupportedBuildpackAPI(id: String, version: String, api: String)
    case file(TOMLFileError)
    case buildpackNotFound(id: String, version: String?, directory: String)
    case invalidInput(String)
    case cannotExecute(ProcessError)
    case noGroupPassed(anyErrored: Bool)
    case buildpackFailed(id: String, version: String, status: Int32)
    case buildpackOutputInvalid(id: String, detail: String)
    case extensionFailed(id: String, version: String, status: Int32)
    case extensionOutputInvalid(id: String, detail: String)
    case io(operation: String, path: String, reason: String)
    case privileges(String)
    case image(String)
    /// A layer patch that cannot be applied: which patch, which layer, what is wrong.
    case layerPatch(patch: String, layer: String?, reason: String)
    case layerPatchFile(LayerPatchError)

    public var description: String {
        switch self {
        case .unsupportedPlatformAPI(let v):
            return "platform API version \"\(v)\" is not supported (this lifecycle supports \(SupportedAPIs.list(SupportedAPIs.platform)))"
        case .unsupportedBuildpackAPI(let id, let version, let api):
            return "buildpack \(id)@\(version) declares buildpack API \(api), which this lifecycle does not support (supported: \(SupportedAPIs.list(SupportedAPIs.buildpack)))"
        case .file(let e):
            return e.description
        case .buildpackNotFound(let id, let version, let directory):
            return "buildpack \(id)\(version.map { "@" + $0 } ?? "") not found in \(directory)"
        case .invalidInput(let s):
            return s
        case .cannotExecute(let cause):
            return cause.description
        case .noGroupPassed(let anyErrored):
            return anyErrored
                ? "no buildpack group passed detection, and at least one buildpack errored"
                : "no buildpack group passed detection; check that the app directory is the one the buildpacks expect"
        case .buildpackFailed(let id, let version, let status):
            return "buildpack \(id)@\(version) failed: bin/build exited with status \(status)"
        case .buildpackOutputInvalid(let id, let detail):
            return "buildpack \(id): \(detail)"
        case .extensionFailed(let id, let version, let status):
            return "image extension \(id)@\(version) failed: bin/generate exited with status \(status)"
        case .extensionOutputInvalid(let id, let detail):
            return "image extension \(id): \(detail)"
        case .io(let operation, let path, let reason):
            return "cannot \(operation) \(path): \(reason)"
        case .privileges(let s):
            return s
        case .image(let s):
            return s
        case .layerPatch(let patch, let layer, let reason):
            return "layer patch \(patch)" + (layer.map { ", layer \($0)" } ?? "") + ": \(reason)"
        case .layerPatchFile(let e):
            return e.description
        }
    }

    /// The exit code platform.md assigns, for the phase that failed.
    public func exitCode(phase: Phase) -> Int32 {
        switch self {
        case .unsupportedPlatformAPI: return LifecycleExit.incompatiblePlatformAPI
        case .unsupportedBuildpackAPI: return LifecycleExit.incompatibleBuildpackAPI
        case .noGroupPassed(let errored): return errored ? LifecycleExit.detectFailedWithError : LifecycleExit.detectFailedNoError
        case .extensionFailed: return LifecycleExit.generateError
        case .extensionOutputInvalid: return LifecycleExit.generateLifecycleError
        case .buildpackFailed, .buildpackOutputInvalid:
            return phase == .build || phase == .extend ? LifecycleExit.buildpackBuildError : LifecycleExit.genericError
        default:
            switch phase {
            case .detect: return LifecycleExit.detectLifecycleError
            case .build: return LifecycleExit.buildLifecycleError
            case .analyze: return LifecycleExit.analyzeError
            case .restore: return LifecycleExit.restoreError
            case .export: return LifecycleExit.exportError
            case .rebase: return LifecycleExit.rebaseError
            case .extend: return LifecycleExit.extendError
            }
        }
    }

    /// The phases implemented here.
    public enum Phase: String, Sendable {
        case analyze, detect, restore, extend, build, export, rebase
    }
}

extension TOMLFileError {
    var lifecycle: LifecycleError { .file(self) }
}

/// Reads a spec file, mapping errors to `LifecycleError`.
func readFile<T: Decodable>(_ type: T.Type, _ path: String) throws(LifecycleError) -> T {
    do {
        return try TOMLFile.read(type, from: path)
    } catch let e as TOMLFileError {
        throw .file(e)
    } catch {
        throw .invalidInput("\(path): \(error)")
    }
}

/// `readFile`, or nil when the file does not exist.
func readFileIfPresent<T: Decodable>(_ type: T.Type, _ path: String) throws(LifecycleError) -> T? {
    guard FS.exists(path) else { return nil }
    return try readFile(type, path)
}

/// Writes a spec file; with `owner`, gives it to that user (the CNB user reads or edits it).
func writeFile<T: Encodable>(_ value: T, _ path: String, owner: (uid: Int, gid: Int)? = nil) throws(LifecycleError) {
    do {
        try TOMLFile.write(value, to: path)
    } catch let e as TOMLFileError {
        throw .file(e)
    } catch {
        throw .io(operation: "write", path: path, reason: "\(error)")
    }
    try giveTo(owner, path)
}
