import Buildpacks
import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Running `bin/detect` (buildpack.md, Detection): each module's at most once per detection,
/// at most `concurrency` at a time, in the environment the spec gives it.
extension Detector {
    func schedule(_ module: ModuleDescriptor) {
        runs.start(module.key) { [self] in
            await limiter.acquire()
            defer { Task { await limiter.release() } }
            if runs.isCancelled { return DetectRecord(outcome: .fail(reason: "not run"), output: "") }
            return await detect(module)
        }
    }

    func detect(_ m: ModuleDescriptor) async -> DetectRecord {
        if let target, let targets = m.targets, !targets.contains(where: { $0.matches(target) }) {
            let t = [target.os, target.arch, target.variant, target.distro?.name, target.distro?.version].compactMap { $0 }.joined(separator: " ")
            return DetectRecord(outcome: .fail(reason: "no [[targets]] entry matches the run image (\(t))"), output: "")
        }
        let detectPath = m.directory + "/bin/detect"
        if m.kind == .extension && !FileManager.default.fileExists(atPath: detectPath) {
            // image_extension.md: no bin/detect means pass, with <ext>/detect as the output dir.
            return DetectRecord(outcome: parsePlan(m, path: m.directory + "/detect/plan.toml"), output: "")
        }
        let dir = scratch + "/" + m.kind.rawValue + "-" + m.id.escaped + "-" + m.version
        let planPath = dir + "/plan.toml"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: planPath, contents: Data()) else {
                throw LifecycleError.io(operation: "create", path: planPath, reason: "cannot create the file")
            }
            try giveTo(inputs.user, dir)
            try giveTo(inputs.user, planPath)
            var env = try environment(for: m)
            if m.api.supports(BuildpackFeature.pathVariables) { env[CNBEnv.buildPlanPath] = planPath }
            // Positional arguments at every API (deprecated since 0.8, not removed; the reference passes them).
            let args = [inputs.platformDirectory, planPath]
            let spec = ProcessSpec(path: detectPath, arguments: args, environment: env, workingDirectory: inputs.appDirectory,
                                   user: inputs.user, group: runs.children)
            let result = try await ChildProcess.runModule(spec, output: .combined)
            let (status, output) = (result.status, result.output)
            switch status {
            case 0: return DetectRecord(outcome: parsePlan(m, path: planPath), output: output)
            case 100: return DetectRecord(outcome: .fail(reason: nil), output: output)
            default: return DetectRecord(outcome: .error(status: status, reason: "bin/detect exited with status \(status)"), output: output)
            }
        } catch {
            return DetectRecord(outcome: .error(status: nil, reason: "\(error)"), output: "")
        }
    }

    func parsePlan(_ m: ModuleDescriptor, path: String) -> DetectOutcome {
        guard FileManager.default.fileExists(atPath: path) else { return .pass(BuildPlan()) }
        do {
            let plan = try TOMLFile.read(BuildPlan.self, from: path)
            if m.kind == .extension && plan.alternatives.contains(where: { !$0.requires.isEmpty }) {
                return .error(status: nil, reason: "an image extension must not output requires in its build plan")
            }
            return .pass(plan)
        } catch {
            return .error(status: nil, reason: "invalid build plan: \(error)")
        }
    }

    /// The environment of `bin/detect` (buildpack.md, Detection and Environment).
    func environment(for m: ModuleDescriptor) throws -> [String: String] {
        var env = BuildEnvironment.base(from: inputs.environment)
        if !m.clearEnv { try env.applyPlatform(envDirectory: inputs.platformDirectory + "/env") }
        // Operator build config (Platform API 0.11) at every version, as the reference applies it.
        try env.apply(envDirectory: inputs.buildConfigDirectory + "/env", defaultAction: .default)
        var vars = env.variables
        vars[m.kind == .buildpack ? CNBEnv.buildpackDir : CNBEnv.extensionDir] = m.directory
        if m.api.supports(BuildpackFeature.pathVariables) { vars[CNBEnv.platformDir] = inputs.platformDirectory }
        if m.api.supports(BuildpackFeature.execEnv) { vars[CNBEnv.execEnv] = inputs.execEnv }
        if m.api.supports(BuildpackFeature.targets) { vars.merge(BuildTarget.environment(target)) { $1 } }
        return vars
    }

}

/// One detect run's record.
struct DetectRecord: Sendable {
    var outcome: DetectOutcome
    var output: String
}

/// Detect runs by module key: each `bin/detect` runs at most once per detection.
final class RunCache: @unchecked Sendable {
    private let lock = Lock()
    private var tasks: [String: Task<DetectRecord, Never>] = [:]
    /// The bin/detect processes of this detection.
    let children = ChildGroup()

    var isCancelled: Bool { children.isCancelled }

    func start(_ key: String, _ body: @escaping @Sendable () async -> DetectRecord) {
        lock.lock()
        defer { lock.unlock() }
        if tasks[key] == nil { tasks[key] = Task { await body() } }
    }

    func result(for key: String) async -> DetectRecord {
        let task = lock.withLock { tasks[key] }
        return await task!.value
    }

    /// Kills the runs still going, keeps the rest from starting, and waits for every run to end.
    func cancelAndWait() async {
        children.cancel()
        for task in lock.withLock({ Array(tasks.values) }) { _ = await task.value }
    }
}

/// A FIFO counting semaphore for async code.
actor Limiter {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = count }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
