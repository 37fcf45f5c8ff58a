import Buildpacks
import Foundation
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Everything `detector` needs, resolved from flags, environment and defaults by the executable.
public struct DetectorInputs: Sendable {
    public var appDirectory: String
    public var buildpacksDirectory: String
    public var extensionsDirectory: String?
    public var platformDirectory: String
    public var buildConfigDirectory: String
    public var orderPath: String
    public var groupPath: String
    public var planPath: String
    public var analyzedPath: String
    public var systemPath: String?
    /// `<generated>`: where extensions' Dockerfiles go.
    public var generatedDirectory: String
    /// `<run>` (run.toml), to warn when an extension switches to an unlisted run image.
    public var runPath: String
    /// False for `creator`, which does not run image extensions (their order is ignored).
    public var usesExtensions: Bool
    public var execEnv: String
    public var platformAPI: APIVersion
    /// CNB user to run buildpacks as when the lifecycle runs as root.
    public var user: (uid: Int, gid: Int)?
    /// The lifecycle's environment (the inherited part is passed to buildpacks).
    public var environment: [String: String]
    /// How many `bin/detect` run at once.
    public var concurrency: Int

    public init(appDirectory: String, buildpacksDirectory: String, extensionsDirectory: String?, platformDirectory: String,
                buildConfigDirectory: String, orderPath: String, groupPath: String, planPath: String, analyzedPath: String,
                systemPath: String?, generatedDirectory: String, runPath: String, usesExtensions: Bool = true,
                execEnv: String, platformAPI: APIVersion, user: (uid: Int, gid: Int)?,
                environment: [String: String], concurrency: Int) {
        self.appDirectory = appDirectory
        self.buildpacksDirectory = buildpacksDirectory
        self.extensionsDirectory = extensionsDirectory
        self.platformDirectory = platformDirectory
        self.buildConfigDirectory = buildConfigDirectory
        self.orderPath = orderPath
        self.groupPath = groupPath
        self.planPath = planPath
        self.analyzedPath = analyzedPath
        self.systemPath = systemPath
        self.generatedDirectory = generatedDirectory
        self.runPath = runPath
        self.usesExtensions = usesExtensions
        self.execEnv = execEnv
        self.platformAPI = platformAPI
        self.user = user
        self.environment = environment
        self.concurrency = concurrency
    }
}

/// The outcome of one `bin/detect`.
public enum DetectOutcome: Sendable, Hashable {
    case pass(BuildPlan)
    case fail(reason: String?)
    case error(status: Int32?, reason: String)

    var symbol: String {
        switch self {
        case .pass: return "pass"
        case .fail: return "fail"
        case .error: return "err "
        }
    }
}

/// One module of a candidate group.
struct Candidate: Sendable, Hashable {
    var module: ModuleDescriptor
    var optional: Bool
}

/// What detection chose.
public struct DetectResult: Sendable {
    public var group: GroupFile
    public var plan: PlanFile
}

/// The detect phase (buildpack.md, Phase #1: Detection; platform.md, detector).
public final class Detector: @unchecked Sendable {
    let inputs: DetectorInputs
    let store: BuildpackStore
    let log: Logger
    let target: TargetData?
    private let runs = RunCache()
    private let limiter: Limiter
    private let scratch: String

    public init(inputs: DetectorInputs, log: Logger) throws {
        self.inputs = inputs
        self.log = log
        self.store = BuildpackStore(buildpacksDirectory: inputs.buildpacksDirectory, extensionsDirectory: inputs.extensionsDirectory)
        let analyzed = try readFileIfPresent(AnalyzedFile.self, inputs.analyzedPath)
        self.target = analyzed?.runImage?.target
        self.limiter = Limiter(max(1, inputs.concurrency))
        self.scratch = try makeTempDirectory(prefix: "cairn-detect", user: inputs.user)
    }

    deinit { try? FileManager.default.removeItem(atPath: scratch) }

    /// Runs detection and writes group.toml and plan.toml.
    /// - Throws: `LifecycleError` (`.noGroupPassed` when nothing passes).
    public func run() async throws -> DetectResult {
        let order = try readFile(OrderFile.self, inputs.orderPath)
        if !inputs.usesExtensions, let ext = order.orderExtensions, !ext.isEmpty {
            throw LifecycleError.invalidInput("\(inputs.orderPath) has [[order-extensions]]: the creator does not apply image extensions; run the phases one by one (analyzer, detector, restorer, extender, builder, exporter) with this builder")
        }
        let system = try inputs.systemPath.flatMap { try readFileIfPresent(SystemFile.self, $0) }
        let candidates = try expand(order: order, system: system)
        log.debug("Detecting with \(candidates.count) candidate group(s), \(inputs.concurrency) detect(s) at a time")

        // Start every distinct bin/detect in group order; the limiter runs at most N at once and,
        // being FIFO, serves earlier groups first. Once a group passes, the rest are cancelled.
        for group in candidates {
            for c in group { schedule(c.module) }
        }
        var explanations: [String] = []
        var anyErrored = false
        defer { runs.cancelAll() }
        for (index, group) in candidates.enumerated() {
            var results: [(Candidate, DetectRecord)] = []
            for c in group { results.append((c, await runs.result(for: c.module.key))) }
            switch resolve(results) {
            case .success(let chosen):
                log.info(Self.report(results, header: "Results"))
                return try write(chosen)
            case .failure(let why):
                anyErrored = anyErrored || results.contains { if case .error = $0.1.outcome { return true } else { return false } }
                explanations.append("group \(index + 1) [\(group.map { $0.module.key }.joined(separator: ", "))]: \(why)\n" + Self.report(results, header: nil))
            }
        }
        if candidates.isEmpty { explanations.append("the order has no groups (or every buildpack was skipped for execution environment \(inputs.execEnv))") }
        log.error("No buildpack group passed detection.\n" + explanations.joined(separator: "\n"))
        throw LifecycleError.noGroupPassed(anyErrored: anyErrored)
    }

    // MARK: Order expansion

    enum Ref {
        case module(GroupReference, ModuleDescriptor.Kind)
        /// The extensions order, prepended to every group as one optional element.
        case extensions([OrderGroup])
    }

    func expand(order: OrderFile, system: SystemFile?) throws -> [[Candidate]] {
        var out: [[Candidate]] = []
        for g in order.order {
            var refs = g.group
            if let system {
                // platform.md, detector: pre/post system buildpacks, unless the group has that ID.
                let ids = Set(refs.map(\.id))
                refs = system.pre.filter { !ids.contains($0.id) } + refs + system.post.filter { !ids.contains($0.id) }
            }
            var all: [Ref] = refs.map { .module($0, .buildpack) }
            if let ext = order.orderExtensions, !ext.isEmpty, inputs.usesExtensions { all.insert(.extensions(ext), at: 0) }
            out += try expandGroup(prefix: [], rest: all[...])
        }
        return out
    }

    func skipsForExecEnv(_ ref: GroupReference, _ module: ModuleDescriptor) -> Bool {
        guard inputs.execEnv != ExecEnv.production else { return false }
        if let envs = ref.execEnv, !envs.contains(inputs.execEnv) && !envs.contains(ExecEnv.any) { return true }
        return !module.supports(execEnv: inputs.execEnv)
    }

    func expandGroup(prefix: [Candidate], rest: ArraySlice<Ref>) throws -> [[Candidate]] {
        guard let first = rest.first else { return prefix.isEmpty ? [] : [prefix] }
        let tail = rest.dropFirst()
        switch first {
        case .extensions(let groups):
            var out: [[Candidate]] = []
            for g in groups {
                out += try expandGroup(prefix: prefix, rest: (g.group.map { Ref.module($0, .extension) } + tail)[...])
            }
            return out + (try expandGroup(prefix: prefix, rest: tail))
        case .module(let ref, let kind):
            let module = try store.lookup(ref.id, version: ref.version, kind: kind)
            let skipped = skipsForExecEnv(ref, module)
            if skipped { log.debug("skip: \(module.key) does not support execution environment \(inputs.execEnv)") }
            if skipped || prefix.contains(where: { $0.module.id == module.id }) {
                return try expandGroup(prefix: prefix, rest: tail)
            }
            if let order = module.order {
                var out: [[Candidate]] = []
                for g in order {
                    out += try expandGroup(prefix: prefix, rest: (g.group.map { Ref.module($0, .buildpack) } + tail)[...])
                }
                if ref.optional { out += try expandGroup(prefix: prefix, rest: tail) }
                return out
            }
            return try expandGroup(prefix: prefix + [Candidate(module: module, optional: ref.optional || kind == .extension)], rest: tail)
        }
    }

    // MARK: Running bin/detect

    private func schedule(_ module: ModuleDescriptor) {
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
            if let user = inputs.user {
                _ = chown(dir, uid_t(user.uid), gid_t(user.gid))
                _ = chown(planPath, uid_t(user.uid), gid_t(user.gid))
            }
            var env = try environment(for: m)
            env[CNBEnv.buildPlanPath] = planPath
            // Positional arguments at every API (deprecated since 0.8, not removed; the reference passes them).
            let args = [inputs.platformDirectory, planPath]
            let spec = ProcessSpec(path: detectPath, arguments: args, environment: env, workingDirectory: inputs.appDirectory, user: inputs.user)
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
        if inputs.platformAPI.supports(PlatformFeature.buildConfig) {
            try env.apply(envDirectory: inputs.buildConfigDirectory + "/env", defaultAction: .default)
        }
        var vars = env.variables
        vars[m.kind == .buildpack ? CNBEnv.buildpackDir : CNBEnv.extensionDir] = m.directory
        vars[CNBEnv.platformDir] = inputs.platformDirectory
        if m.api.supports(BuildpackFeature.execEnv) { vars[CNBEnv.execEnv] = inputs.execEnv }
        if m.api.supports(BuildpackFeature.targets) { vars.merge(Self.targetEnvironment(target)) { $1 } }
        return vars
    }

    /// `CNB_TARGET_*` for a run image target (buildpack.md, Environment > Targets).
    static func targetEnvironment(_ target: TargetData?) -> [String: String] {
        guard let target else { return [:] }
        var env: [String: String] = [:]
        env[CNBEnv.targetOS] = target.os
        env[CNBEnv.targetArch] = target.arch
        env[CNBEnv.targetArchVariant] = target.variant
        env[CNBEnv.targetDistroName] = target.distro?.name
        env[CNBEnv.targetDistroVersion] = target.distro?.version
        return env.filter { !$0.value.isEmpty }
    }

    // MARK: Resolution

    struct Chosen {
        var elements: [Candidate]
        var entries: [PlanFile.Entry]
    }

    enum Resolution {
        case success(Chosen)
        case failure(String)
    }

    /// Picks the passing modules and a build plan (buildpack.md, Detection > Process).
    func resolve(_ results: [(Candidate, DetectRecord)]) -> Resolution {
        var passing: [(Candidate, BuildPlan)] = []
        for (c, r) in results {
            switch r.outcome {
            case .pass(let plan): passing.append((c, plan))
            case .fail(let reason):
                if !c.optional { return .failure("\(c.module.key) failed detection" + (reason.map { ": \($0)" } ?? "")) }
            case .error(_, let reason):
                if !c.optional { return .failure("\(c.module.key) errored: \(reason)") }
            }
        }
        guard passing.contains(where: { $0.0.module.kind == .buildpack }) else {
            return .failure("no buildpack passed detection")
        }
        let inputs = passing.map { PlanResolution.Input(element: $0.0, optional: $0.0.optional, plan: $0.1) }
        switch PlanResolution.resolve(inputs, describe: { $0.module.key }, log: { [log] in log.debug($0) }) {
        case .success(let resolved):
            guard resolved.elements.contains(where: { $0.module.kind == .buildpack }) else {
                return .failure("no buildpack is left in the group after resolving the plan")
            }
            if resolved.elements.count != results.count {
                log.debug("\(resolved.elements.count) of \(results.count) modules participating")
            }
            let entries = resolved.entries.map { PlanFile.Entry(providers: $0.providers.map { PlanFile.Provider($0.module.element) }, requires: $0.requires) }
            return .success(Chosen(elements: resolved.elements, entries: entries))
        case .failure(let failure):
            return .failure(failure.trials <= 1 ? failure.reason
                            : "none of \(failure.trials) build plan combinations works; last: \(failure.reason)")
        }
    }

    // MARK: Output

    /// Writes group.toml; with extensions chosen, runs generation, which decides the plan left to
    /// buildpacks; then writes plan.toml.
    func write(_ chosen: Chosen) throws -> DetectResult {
        // group.toml has no detection-only keys (`optional`): the group is what runs.
        let buildpacks = chosen.elements.filter { $0.module.kind == .buildpack }.map(\.module.element)
        let extensions = chosen.elements.filter { $0.module.kind == .extension }.map(\.module.element)
        let group = GroupFile(group: buildpacks, groupExtensions: extensions.isEmpty ? nil : extensions)
        try writeFile(group, inputs.groupPath)
        for el in buildpacks { log.info("\(el.id) \(el.version)") }
        var plan = PlanFile(entries: chosen.entries)
        if !extensions.isEmpty {
            for el in extensions { log.info("\(el.id) \(el.version) (extension)") }
            // Generation: extensions' Dockerfiles, the run image choice, the plan left to buildpacks.
            let generator = Generator(inputs: inputs, log: log, store: store) { [self] in try environment(for: $0) }
            plan = try generator.run(group: group, plan: plan)
        }
        try writeFile(plan, inputs.planPath)
        return DetectResult(group: group, plan: plan)
    }

    static func report(_ results: [(Candidate, DetectRecord)], header: String?) -> String {
        var lines: [String] = []
        for (c, r) in results where !r.output.isEmpty {
            if case .pass = r.outcome, header != nil { continue }
            lines.append("======== Output: \(c.module.key) ========")
            lines.append(r.output.hasSuffix("\n") ? String(r.output.dropLast()) : r.output)
        }
        if let header { lines.append("======== \(header) ========") }
        for (c, r) in results {
            var line = "\(r.outcome.symbol): \(c.module.key)\(c.module.kind == .extension ? " (extension)" : "")\(c.optional && c.module.kind == .buildpack ? " (optional)" : "")"
            switch r.outcome {
            case .fail(let reason?): line += " — \(reason)"
            case .error(_, let reason): line += " — \(reason)"
            default: break
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// One detect run's record.
struct DetectRecord: Sendable {
    var outcome: DetectOutcome
    var output: String
}

/// Detect runs by module key: each `bin/detect` runs at most once per detection.
final class RunCache: @unchecked Sendable {
    private let lock = NSLock()
    private var tasks: [String: Task<DetectRecord, Never>] = [:]
    private var cancelled = false

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    func start(_ key: String, _ body: @escaping @Sendable () async -> DetectRecord) {
        lock.lock()
        defer { lock.unlock() }
        if tasks[key] == nil { tasks[key] = Task { await body() } }
    }

    func result(for key: String) async -> DetectRecord {
        let task = lock.withLock { tasks[key] }
        return await task!.value
    }

    func cancelAll() {
        lock.lock()
        cancelled = true
        lock.unlock()
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
