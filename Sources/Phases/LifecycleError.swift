import Buildpacks
import FoundationEssentials
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Errors of the lifecycle phases. Each case names what it is about (file, image, label, layer,
/// argument) and carries the underlying error where there is one; each maps to a platform.md
/// exit code.
public enum LifecycleError: Error, Sendable, CustomStringConvertible {
    case unsupportedPlatformAPI(String)
    /// `CNB_PLATFORM_API` is not set.
    case platformAPIUnset
    case unsupportedBuildpackAPI(id: String, version: String, api: String)
    case file(TOMLFileError)
    case buildpackNotFound(id: String, version: String?, directory: String)
    /// A process type (`-process-type`) the buildpacks did not provide.
    case unknownProcessType(String, known: [String])
    /// An argument or input value that cannot be used, and what was expected.
    case invalidArgument(String, reason: String)
    /// An image reference that does not parse.
    case invalidReference(String, cause: any Error)
    /// An input the phase needs and was not given, and how to give it.
    case missingInput(what: String, hint: String)
    /// Something this lifecycle, or this invocation of it, does not do.
    case unsupported(String)
    case cannotExecute(ProcessError)
    case noGroupPassed(anyErrored: Bool)
    case buildpackFailed(id: String, version: String, status: Int32)
    case buildpackOutputInvalid(id: String, detail: String)
    case extensionFailed(id: String, version: String, status: Int32)
    case extensionOutputInvalid(id: String, detail: String)
    case io(operation: String, path: String, reason: String)
    case privileges(String)
    /// An image the phase needs is not where it was looked for (`role`: run image, app image, …).
    case imageNotFound(role: String, reference: String)
    /// Reading or writing an image (app, run, cache, patch image) failed.
    case imageIO(operation: String, image: String, cause: any Error)
    /// A layer that cannot be written, reused, copied, cached or restored: which, and why.
    case layer(operation: String, layer: String, cause: any Error)
    /// An image without a label the phase needs, and what that means.
    case missingLabel(image: String, label: String, meaning: String)
    /// An image's label is not of the shape the spec gives it.
    case label(image: String, label: String, reason: String, cause: (any Error)? = nil)
    /// An image whose content is not what its metadata says or what the phase needs.
    case imageContent(image: String, reason: String)
    /// A rebase refused (most reasons can be overridden with -force; the message says which).
    case rebaseRefused(String)
    /// Applying extension Dockerfiles to the build or run image failed.
    case extensionApply(kind: String, cause: any Error)
    /// An error of another module that reached the phase unmapped.
    case unexpected(any Error)
    /// A layer patch that cannot be applied: which patch, which layer, what is wrong.
    case layerPatch(patch: String, layer: String?, reason: String)
    case layerPatchFile(LayerPatchError)

    public var description: String {
        switch self {
        case .unsupportedPlatformAPI(let v):
            return "platform API version \"\(v)\" is not supported (this lifecycle supports \(SupportedAPIs.list(SupportedAPIs.platform)))"
        case .platformAPIUnset:
            return "\(CNBEnv.platformAPI) is not set: set it to the Platform API version the platform follows (this lifecycle supports \(SupportedAPIs.list(SupportedAPIs.platform)))"
        case .unsupportedBuildpackAPI(let id, let version, let api):
            return "buildpack \(id)@\(version) declares buildpack API \(api), which this lifecycle does not support (supported: \(SupportedAPIs.list(SupportedAPIs.buildpack)))"
        case .file(let e):
            return e.description
        case .buildpackNotFound(let id, let version, let directory):
            return "buildpack \(id)\(version.map { "@" + $0 } ?? "") not found in \(directory)"
        case .invalidArgument(let argument, let reason):
            return "\(argument): \(reason)"
        case .invalidReference(let reference, let cause):
            return "image reference \"\(reference)\": \(cause)"
        case .missingInput(let what, let hint):
            return "\(what): \(hint)"
        case .unsupported(let s):
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
        case .imageNotFound(let role, let reference):
            return "\(role) \(reference) not found"
        case .imageIO(let operation, let image, let cause):
            return "cannot \(operation) \(image): \(cause)"
        case .layer(let operation, let layer, let cause):
            return "cannot \(operation) \(layer): \(cause)"
        case .missingLabel(let image, let label, let meaning):
            return "\(image) has no \(label) label: \(meaning)"
        case .unknownProcessType(let type, let known):
            return "process type \(type) is not one of the buildpack-provided processes (\(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case .label(let image, let label, let reason, let cause):
            return "\(image): label \(label) \(reason)" + (cause.map { ": \($0)" } ?? "")
        case .imageContent(let image, let reason):
            return "\(image): \(reason)"
        case .rebaseRefused(let s):
            return s
        case .extensionApply(let kind, let cause):
            return "extending the \(kind) image: \(cause)"
        case .unexpected(let cause):
            return "\(cause)"
        case .layerPatch(let patch, let layer, let reason):
            return "layer patch \(patch)" + (layer.map { ", layer \($0)" } ?? "") + ": \(reason)"
        case .layerPatchFile(let e):
            return e.description
        }
    }

    /// The exit code platform.md assigns, for the phase that failed.
    public func exitCode(phase: Phase) -> Int32 {
        switch self {
        case .unsupportedPlatformAPI, .platformAPIUnset: return LifecycleExit.incompatiblePlatformAPI
        case .unsupportedBuildpackAPI: return LifecycleExit.incompatibleBuildpackAPI
        case .noGroupPassed(let errored): return errored ? LifecycleExit.detectFailedWithError : LifecycleExit.detectFailedNoError
        case .extensionFailed: return LifecycleExit.generateError
        case .extensionOutputInvalid: return LifecycleExit.generateLifecycleError
        case .buildpackFailed:
            return phase == .build || phase == .extend ? LifecycleExit.buildpackBuildError : LifecycleExit.genericError
        case .buildpackOutputInvalid:
            switch phase {
            case .build: return LifecycleExit.buildpackOutputInvalid
            case .extend: return LifecycleExit.buildpackBuildError
            default: return LifecycleExit.genericError
            }
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
public func readFile<T: Decodable>(_ type: T.Type, _ path: String) throws(LifecycleError) -> T {
    do {
        return try TOMLFile.read(type, from: path)
    } catch let e as TOMLFileError {
        throw .file(e)
    } catch {
        throw .invalidArgument(path, reason: "\(error)")
    }
}

/// group.toml. A group entry whose `api` is not an API version is an incompatible buildpack API
/// (exit 12, as the reference lifecycle exits), not an unreadable file: the entry is looked up
/// in the raw TOML only when decoding failed.
public func readGroup(_ path: String) throws(LifecycleError) -> GroupFile {
    do {
        return try readFile(GroupFile.self, path)
    } catch {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let table = (try? TOMLParser.parse(text)) ?? [:]
        for key in ["group", "group-extensions"] {
            for entry in table[key]?.array ?? [] {
                guard let api = entry["api"]?.string, APIVersion(api) == nil else { continue }
                throw .unsupportedBuildpackAPI(id: entry["id"]?.string ?? "?", version: entry["version"]?.string ?? "?", api: api)
            }
        }
        throw error
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
