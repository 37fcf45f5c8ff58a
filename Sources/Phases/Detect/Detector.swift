import Buildpacks
import FoundationEssentials
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
    let runs = RunCache()
    let limiter: Limiter
    let scratch: String

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
            throw LifecycleError.unsupported("\(inputs.orderPath) has [[order-extensions]]: the creator does not apply image extensions; run the phases one by one (analyzer, detector, restorer, extender, builder, exporter) with this builder")
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
        var chosen: Chosen?
        search: for (index, group) in candidates.enumerated() {
            var results: [(Candidate, DetectRecord)] = []
            for c in group { results.append((c, await runs.result(for: c.module.key))) }
            switch resolve(results) {
            case .success(let found):
                log.info(Self.report(results, header: "Results"))
                chosen = found
                break search
            case .failure(let why):
                anyErrored = anyErrored || results.contains { if case .error = $0.1.outcome { return true } else { return false } }
                explanations.append("group \(index + 1) [\(group.map { $0.module.key }.joined(separator: ", "))]: \(why)\n" + Self.report(results, header: nil))
            }
        }
        // Detection is decided: the bin/detect runs still going are killed and awaited, so none
        // outlives the phase.
        await runs.cancelAndWait()
        if let chosen { return try write(chosen) }
        if candidates.isEmpty { explanations.append("the order has no groups (or every buildpack was skipped for execution environment \(inputs.execEnv))") }
        log.error("No buildpack group passed detection.\n" + explanations.joined(separator: "\n"))
        throw LifecycleError.noGroupPassed(anyErrored: anyErrored)
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
