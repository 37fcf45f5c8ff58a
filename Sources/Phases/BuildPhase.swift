import Buildpacks
import FoundationEssentials
import CNBCore
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Everything `builder` needs, resolved by the executable.
public struct BuildPhaseInputs: Sendable {
    public var appDirectory: String
    public var buildpacksDirectory: String
    public var layersDirectory: String
    public var platformDirectory: String
    public var buildConfigDirectory: String
    public var groupPath: String
    public var planPath: String
    public var analyzedPath: String
    public var execEnv: String
    public var platformAPI: APIVersion
    public var user: (uid: Int, gid: Int)?
    public var environment: [String: String]

    public init(appDirectory: String, buildpacksDirectory: String, layersDirectory: String, platformDirectory: String,
                buildConfigDirectory: String, groupPath: String, planPath: String, analyzedPath: String, execEnv: String,
                platformAPI: APIVersion, user: (uid: Int, gid: Int)?, environment: [String: String]) {
        self.appDirectory = appDirectory
        self.buildpacksDirectory = buildpacksDirectory
        self.layersDirectory = layersDirectory
        self.platformDirectory = platformDirectory
        self.buildConfigDirectory = buildConfigDirectory
        self.groupPath = groupPath
        self.planPath = planPath
        self.analyzedPath = analyzedPath
        self.execEnv = execEnv
        self.platformAPI = platformAPI
        self.user = user
        self.environment = environment
    }
}

/// The build phase (buildpack.md, Phase #5: Build; platform.md, builder).
public struct BuildPhase {
    let inputs: BuildPhaseInputs
    let log: Logger

    /// Files in a buildpack's layers directory that are not layer metadata.
    static let reservedNames: Set<String> = ["launch", "build", "store"]

    public init(inputs: BuildPhaseInputs, log: Logger) {
        self.inputs = inputs
        self.log = log
    }

    /// Runs every buildpack of the group and writes `<layers>/config/metadata.toml`.
    /// - Throws: `LifecycleError` (`.buildpackFailed` → exit 51).
    @discardableResult
    public func run() throws -> BuildMetadataFile {
        let group = try readGroup(inputs.groupPath)
        var plan = try readFile(PlanFile.self, inputs.planPath).entries
        let target = try readFileIfPresent(AnalyzedFile.self, inputs.analyzedPath)?.runImage?.target
        let store = BuildpackStore(buildpacksDirectory: inputs.buildpacksDirectory, extensionsDirectory: nil)
        var environment = BuildEnvironment.base(from: inputs.environment)
        var metadata = BuildMetadataFile(buildpacks: group.group, extensions: group.groupExtensions)
        var labels: [String: String] = [:]
        let scratch = try makeTempDirectory(prefix: "cairn-build", user: inputs.user)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // SBOMs of an earlier build must not pass for this one's (platform.md, builder).
        let sbomRoot = inputs.layersDirectory + "/" + CNBPath.sbomDir
        do { if FileManager.default.fileExists(atPath: sbomRoot) { try FileManager.default.removeItem(atPath: sbomRoot) } } catch {
            throw LifecycleError.io(operation: "remove the stale SBOM directory", path: sbomRoot, reason: "\(error)")
        }

        var launchProcesses = LaunchProcesses()
        for element in group.group {
            let module = try store.lookup(element.id, version: element.version)
            log.info("Running build for buildpack \(module.key)")
            let layersDir = inputs.layersDirectory + "/" + module.id.escaped
            try makeOwnedDirectory(layersDir)
            // The Buildpack Plan: entries this buildpack provided that no earlier one met.
            let (bpPlan, bpPlanPath) = try writeBuildpackPlan(for: module, from: plan, in: scratch, owner: inputs.user)
            try runBuild(module, layersDir: layersDir, planPath: bpPlanPath, environment: environment, target: target)

            // Outputs: build.toml (unmet), launch.toml, store.toml, layers.
            let buildFile = try readOutput(BuildFile.self, layersDir + "/build.toml", module) ?? BuildFile()
            for unmet in buildFile.unmet where !bpPlan.entries.contains(where: { $0.name == unmet.name }) {
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value,
                    detail: "build.toml lists unmet \"\(unmet.name)\", which is not in its buildpack plan")
            }
            let unmetNames = Set(buildFile.unmet.map(\.name))
            plan = plan.filter { entry in
                !(entry.providers.contains { $0.id == module.id } && !entry.requires.contains { unmetNames.contains($0.name) })
            }
            _ = try readOutput(StoreFile.self, layersDir + "/store.toml", module)
            let launch = try readOutput(LaunchFile.self, layersDir + "/launch.toml", module) ?? LaunchFile()
            for (file, bom) in [("launch.toml", launch.bom), ("build.toml", buildFile.bom)] {
                if let bom, !bom.isEmpty {
                    log.warn("\(module.key): the [[bom]] table in \(file) is not supported by Buildpack API \(module.api) and is ignored; write SBOM files (<layer>.sbom.<ext>, launch.sbom.<ext>, build.sbom.<ext>) instead")
                }
            }
            try checkLaunchFile(launch, module: module)
            try checkSBOMFiles(layersDir, module: module)
            let buildLayers = try finishLayers(layersDir, module: module)
            // <layers>/sbom is Platform API 0.8's (the reference copies nothing before).
            if inputs.platformAPI.supports(PlatformFeature.sbomDirectory) { try copySBOMFiles(layersDir, module: module) }
            Self.addBuildLayers(buildLayers, to: &environment)
            for layer in buildLayers {
                try environment.apply(envDirectory: layer + "/env")
                try environment.apply(envDirectory: layer + "/env.build")
            }
            launchProcesses.add(launch.processes, from: module)
            for l in launch.labels { labels[l.key] = l.value }
            metadata.slices += launch.slices
        }
        // Sorted by type, as the reference lifecycle writes them (metadata.toml and the label).
        let processes = launchProcesses.processes.sorted { $0.type.value < $1.type.value }
        let defaultType = launchProcesses.defaultType
        metadata.processes = processes
        metadata.buildpackDefaultProcessType = defaultType
        metadata.labels = labels.isEmpty ? nil : labels.keys.sorted().map { LaunchFile.Label(key: $0, value: labels[$0]!) }
        metadata.commandString = !inputs.platformAPI.supports(PlatformFeature.metadataCommandArray)
        try writeFile(metadata, inputs.layersDirectory + "/" + CNBPath.configMetadata)
        return metadata
    }

    /// Runs one buildpack's `bin/build` as the CNB user, with the build environment, the
    /// platform's env (unless `clear-env`), the build config and the spec's variables.
    func runBuild(_ module: ModuleDescriptor, layersDir: String, planPath: String, environment: BuildEnvironment,
                  target: TargetData?) throws {
        var env = environment
        if !module.clearEnv { try env.applyPlatform(envDirectory: inputs.platformDirectory + "/env") }
        // Operator build config (Platform API 0.11) at every version, as the reference applies it.
        try env.apply(envDirectory: inputs.buildConfigDirectory + "/env", defaultAction: .default)
        var vars = env.variables
        vars[CNBEnv.buildpackDir] = module.directory
        if module.api.supports(BuildpackFeature.pathVariables) {
            vars[CNBEnv.layersDir] = layersDir
            vars[CNBEnv.platformDir] = inputs.platformDirectory
            vars[CNBEnv.bpPlanPath] = planPath
        }
        if module.api.supports(BuildpackFeature.execEnv) { vars[CNBEnv.execEnv] = inputs.execEnv }
        if module.api.supports(BuildpackFeature.targets) { vars.merge(BuildTarget.environment(target)) { $1 } }
        // Positional arguments at every API: deprecated since 0.8, not removed, and still read by real buildpacks.
        let args = [layersDir, inputs.platformDirectory, planPath]
        let spec = ProcessSpec(path: module.directory + "/bin/build", arguments: args, environment: vars,
                               workingDirectory: inputs.appDirectory, user: inputs.user)
        let status = try ChildProcess.runModule(spec).status
        guard status == 0 else { throw LifecycleError.buildpackFailed(id: module.id.value, version: module.version, status: status) }
    }

    /// The processes of the group: a later buildpack's process replaces an earlier one of the same
    /// type; the default is the last one marked default, unless a later non-default redefines it.
    struct LaunchProcesses {
        var processes: [BuildMetadataFile.Process] = []
        var defaultType: String?

        mutating func add(_ declared: [LaunchFile.Process], from module: ModuleDescriptor) {
            for p in declared {
                let direct = module.api.supports(BuildpackFeature.commandArray) ? true : (p.direct ?? false)
                let process = BuildMetadataFile.Process(
                    type: p.type, command: p.command, args: p.args, direct: direct, workingDirectory: p.workingDirectory,
                    buildpackID: module.id, execEnv: module.api.supports(BuildpackFeature.execEnv) ? (p.execEnv ?? [ExecEnv.any]) : [ExecEnv.any])
                processes.removeAll { $0.type == p.type }
                processes.append(process)
                if p.isDefault {
                    defaultType = p.type.value
                } else if defaultType == p.type.value {
                    defaultType = nil
                }
            }
        }
    }

    /// A file the buildpack wrote (build.toml, launch.toml, store.toml, a layer's TOML), or nil
    /// when absent. One that does not parse is the buildpack's invalid output (exit 52, as the
    /// reference exits), not a lifecycle error.
    func readOutput<T: Decodable>(_ type: T.Type, _ path: String, _ module: ModuleDescriptor) throws(LifecycleError) -> T? {
        do {
            return try readFileIfPresent(type, path)
        } catch .file(let e) {
            throw .buildpackOutputInvalid(id: module.id.value, detail: e.description)
        }
    }

    /// Layer directories after a buildpack ran: validates names and metadata, renames ignored
    /// layers to `<layer>.ignore`, returns the build layers (sorted by name).
    func finishLayers(_ layersDir: String, module: ModuleDescriptor) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layersDir))?.sorted() ?? []
        var build: [String] = []
        for name in names {
            let path = layersDir + "/" + name
            guard FS.isDirectory(path), !name.hasSuffix(".ignore") else { continue }
            guard !Self.reservedNames.contains(name) else {
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value, detail: "a layer must not be named \"\(name)\"")
            }
            let meta = try readOutput(LayerMetadataFile.self, path + ".toml", module)
            let types = meta?.effectiveTypes ?? LayerMetadataFile.Types()
            if !types.launch && !types.build && !types.cache {
                // buildpack.md, Ignored Layers: hide them from later buildpacks.
                let ignored = path + ".ignore"
                try? FileManager.default.removeItem(atPath: ignored)
                do {
                    try FileManager.default.moveItem(atPath: path, toPath: ignored)
                } catch {
                    throw LifecycleError.io(operation: "rename ignored layer", path: path, reason: "\(error)")
                }
                continue
            }
            if types.build { build.append(path) }
        }
        return build
    }

    /// Prepends one buildpack's build layers' `bin`, `lib`, ... to the path variables as a block in
    /// ascending layer order; later buildpacks' blocks come first (buildpack.md, Layer Paths).
    static func addBuildLayers(_ layers: [String], to env: inout BuildEnvironment) {
        for (variable, sub) in BuildEnvironment.buildRootDirs {
            let dirs = layers.map { $0 + "/" + sub }.filter { FileManager.default.fileExists(atPath: $0) }
            if !dirs.isEmpty { env.prependPath(variable, dirs.joined(separator: ":")) }
        }
    }

    /// SBOM files must use a supported extension (buildpack.md, Software-Bill-of-Materials), of a
    /// media type the buildpack declares in `sbom-formats` (buildpack.toml).
    func checkSBOMFiles(_ layersDir: String, module: ModuleDescriptor) throws {
        for (owner, ext, _) in sbomFiles(in: layersDir) {
            guard let mediaType = SBOMFormat.extensions.first(where: { $0.value == ext })?.key else {
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value,
                    detail: "\(owner).sbom.\(ext): unsupported SBOM format \"\(ext)\" (expected one of \(SBOMFormat.fileExtensions.sorted().joined(separator: ", ")))")
            }
            guard module.sbomFormats.contains(mediaType) else {
                let declared = module.sbomFormats.isEmpty ? "none" : module.sbomFormats.joined(separator: ", ")
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value,
                    detail: "\(owner).sbom.\(ext): SBOM format \(mediaType) is not declared in buildpack.toml sbom-formats (declared: \(declared))")
            }
        }
    }

    /// Copies a buildpack's SBOM files where platform.md puts them: `launch.sbom.<ext>` and
    /// launch layers' to `<layers>/sbom/launch/<bp>/[<layer>/]sbom.<ext>`, `build.sbom.<ext>`
    /// and other layers' (build, cache) to `<layers>/sbom/build/<bp>/[<layer>/]sbom.<ext>`.
    func copySBOMFiles(_ layersDir: String, module: ModuleDescriptor) throws {
        let root = inputs.layersDirectory + "/" + CNBPath.sbomDir
        for (owner, ext, path) in sbomFiles(in: layersDir) {
            let target: String
            switch owner {
            case "launch": target = "\(root)/launch/\(module.id.escaped)/sbom.\(ext)"
            case "build": target = "\(root)/build/\(module.id.escaped)/sbom.\(ext)"
            default:
                // Only layers that are kept: an ignored layer's directory was renamed.
                guard FS.isDirectory(layersDir + "/" + owner) else { continue }
                let types = try readFileIfPresent(LayerMetadataFile.self, layersDir + "/" + owner + ".toml")?.effectiveTypes
                    ?? LayerMetadataFile.Types()
                let kind = types.launch ? "launch" : "build"
                target = "\(root)/\(kind)/\(module.id.escaped)/\(owner)/sbom.\(ext)"
            }
            do {
                let dir = parentDirectory(of: target)
                try FS.makeDirectories(dir)
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: path, toPath: target)
            } catch {
                throw LifecycleError.io(operation: "copy SBOM file to", path: target, reason: "\(error)")
            }
        }
    }

    /// launch.toml as the buildpack's API defines it: from Buildpack API 0.9, `command` is an
    /// array and `direct` is gone (buildpack.md, launch.toml).
    func checkLaunchFile(_ launch: LaunchFile, module: ModuleDescriptor) throws {
        guard module.api.supports(BuildpackFeature.commandArray) else { return }
        for p in launch.processes {
            if p.direct != nil {
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value,
                    detail: "launch.toml: process \"\(p.type)\": key \"direct\" is not allowed at Buildpack API \(module.api) (removed in 0.9)")
            }
            if p.commandIsString {
                throw LifecycleError.buildpackOutputInvalid(id: module.id.value,
                    detail: "launch.toml: process \"\(p.type)\": key \"command\" must be an array of strings at Buildpack API \(module.api)")
            }
        }
    }

    func makeOwnedDirectory(_ path: String) throws {
        try Phases.makeOwnedDirectory(path, user: inputs.user)
    }
}

/// Writes `module`'s Buildpack Plan (the `requires` of the plan entries it provides) to
/// `<dir>/<id>-plan.toml`, owned by the CNB user; used for `bin/build` and `bin/generate`.
func writeBuildpackPlan(for module: ModuleDescriptor, from entries: [PlanFile.Entry], in dir: String,
                        owner: (uid: Int, gid: Int)?) throws(LifecycleError) -> (plan: BuildpackPlan, path: String) {
    let isExtension = module.kind == .extension
    let mine = entries.filter { $0.providers.contains { $0.id == module.id && $0.isExtension == isExtension } }
    let plan = BuildpackPlan(entries: mine.flatMap(\.requires))
    let path = dir + "/" + module.id.escaped + "-plan.toml"
    try writeFile(plan, path, owner: owner)
    return (plan, path)
}
