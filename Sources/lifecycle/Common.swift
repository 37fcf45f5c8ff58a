import ArgumentParser
import Buildpacks
import Foundation
import Lifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Resolves an input: flag first, then environment variable, then default (platform.md, Usage).
func resolve(_ flag: String?, _ env: String, _ environment: [String: String], default: @autoclosure () -> String) -> String {
    if let flag, !flag.isEmpty { return flag }
    if let v = environment[env], !v.isEmpty { return v }
    return `default`()
}

/// Resolves a path input like `resolve`, made absolute against the working directory: buildpacks
/// run in the app directory, so a relative path would point elsewhere for them.
func resolvePath(_ flag: String?, _ env: String, _ environment: [String: String], default: @autoclosure () -> String) -> String {
    absolute(resolve(flag, env, environment, default: `default`()))
}

func absolute(_ path: String) -> String {
    guard !path.hasPrefix("/") else { return path }
    let cwd = FileManager.default.currentDirectoryPath
    return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true)).standardizedFileURL.path
}

/// The Platform API this run follows: `CNB_PLATFORM_API`, checked before any other input.
func platformAPI(_ environment: [String: String]) throws(LifecycleError) -> APIVersion {
    guard let raw = environment[CNBEnv.platformAPI], !raw.isEmpty else { return SupportedAPIs.defaultPlatform }
    guard let v = APIVersion(raw), SupportedAPIs.isSupported(platform: v) else { throw .unsupportedPlatformAPI(raw) }
    if SupportedAPIs.deprecatedPlatform.contains(v) {
        FileHandle.standardError.write(Data("Warning: platform API \(v) is deprecated\n".utf8))
    }
    return v
}

/// The user buildpacks run as. As root, privileges are dropped to `CNB_USER_ID`/`CNB_GROUP_ID`;
/// buildpacks never run as root.
func buildpackUser(_ environment: [String: String]) throws(LifecycleError) -> (uid: Int, gid: Int)? {
    guard geteuid() == 0 else { return nil }
    guard let u = environment[CNBEnv.userID].flatMap(Int.init), let g = environment[CNBEnv.groupID].flatMap(Int.init) else {
        throw .privileges("running as root: set \(CNBEnv.userID) and \(CNBEnv.groupID) to the CNB user so buildpacks do not run as root")
    }
    guard u != 0 else { throw .privileges("\(CNBEnv.userID) is 0: buildpacks never run as root") }
    return (u, g)
}

func logger(_ flag: String?, _ environment: [String: String]) throws(LifecycleError) -> Logger {
    let name = resolve(flag, CNBEnv.logLevel, environment, default: "info")
    guard let level = Logger.Level(name: name) else {
        throw .invalidInput("log level \"\(name)\" is not one of debug, info, warn, error")
    }
    return Logger(level: level)
}

/// Runs a phase body, printing a failure once as "ERROR: failed to <action>: <cause>" and exiting
/// with platform.md's code.
func runPhase(_ phase: LifecycleError.Phase, action: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as LifecycleError {
        FileHandle.standardError.write(Data("ERROR: failed to \(action): \(e)\n".utf8))
        throw ExitCode(e.exitCode(phase: phase))
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("ERROR: failed to \(action): \(error)\n".utf8))
        throw ExitCode(phase == .detect ? LifecycleExit.detectLifecycleError : LifecycleExit.buildLifecycleError)
    }
}

extension NameSpecification {
    /// A Go-style single-dash long flag, as the reference lifecycle takes them (`-app`).
    static func dash(_ name: String) -> NameSpecification { [.customLong(name, withSingleDash: true), .customLong(name)] }
}
