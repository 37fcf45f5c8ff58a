import Buildpacks
import Extend
import FoundationEssentials
import Phases
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// `extender` (platform.md): applies the extensions' Dockerfiles to the container it runs in, as
/// root. `-kind build` (in the build image's container): build.Dockerfiles change the container in
/// place, then the build phase runs in it as the CNB user with the extended environment.
/// `-kind run` (in the run image's container): run.Dockerfiles change the container in place and
/// the changes are recorded as layers of the extended run image in `<extended>/run` (manifest,
/// config and the new layers), for the exporter. No daemon, no registry, no kaniko.
struct ExtenderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extender",
        abstract: "Apply image extension Dockerfiles to the build or run image (platform.md, extender).")

    @OptionGroup var options: PhaseOptions
    @OptionGroup var images: ImageOptions
    @Option(name: .dash("kind"), help: "build or run (CNB_EXTEND_KIND; default build)") var kind: String?
    @Option(name: .dash("generated"), help: "Generated Dockerfiles (CNB_GENERATED_DIR; default <layers>/generated)") var generated: String?
    @Option(name: .dash("extended"), help: "Output for the extended run image (CNB_EXTENDED_DIR; default <layers>/extended)") var extended: String?
    @Option(name: .dash("kaniko-cache-ttl"), help: "Accepted for compatibility; Cairn keeps no kaniko cache") var kanikoCacheTTL: String?

    func run() async throws {
        try await runPhase(.extend, action: "extend") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            guard api.supports(PlatformFeature.imageExtensions) else {
                throw LifecycleError.unsupported("image extensions need Platform API 0.10 or newer (\(CNBEnv.platformAPI) is \(api))")
            }
            let kindName = resolve(kind, CNBEnv.extendKind, env, default: "build")
            guard let kind = ExtendKind(rawValue: kindName) else {
                throw LifecycleError.invalidArgument("-kind \(kindName)", reason: "expected build or run")
            }
            let layers = options.layersDirectory(env)
            let group = try readGroup(options.groupPath(env))
            let analyzed = try readFile(AnalyzedFile.self, options.analyzedPath(env))
            let dockerfiles: [ExtensionDockerfile]
            do {
                dockerfiles = try GeneratedDockerfiles.find(
                    generatedDirectory: resolvePath(generated, CNBEnv.generatedDir, env, default: layers + "/generated"),
                    group: group, kind: kind, appDirectory: options.appDirectory(env), platformAPI: api)
            } catch { throw LifecycleError.extensionApply(kind: kindName, cause: error) }
            let excluded = [layers, options.appDirectory(env), options.platformDirectory(env), "/cnb", "/proc", "/sys", "/dev", "/tmp",
                            "/kaniko", "/workspace", "/layers", "/platform", "/cache", "/layout", "/etc/resolv.conf", "/etc/hosts",
                            "/etc/hostname"] + [images.cacheDirectory(env)].compactMap { $0 }
            switch kind {
            case .build:
                try extendBuild(dockerfiles, analyzed: analyzed, excluded: excluded, env: env, api: api, log: log)
            case .run:
                try await extendRun(dockerfiles, analyzed: analyzed, excluded: excluded, env: env, log: log)
            }
        }
    }

    /// build.Dockerfiles in place (no layers are kept: the build follows here), then the build.
    func extendBuild(_ dockerfiles: [ExtensionDockerfile], analyzed: AnalyzedFile, excluded: [String], env: [String: String],
                     api: APIVersion, log: Logger) throws {
        var buildEnv = env
        if analyzed.buildImage?.extend == true && !dockerfiles.isEmpty {
            let user = "\(images.userID(env)):\(images.groupID(env))"
            let config = ExecutionConfig(user: user, env: env.map { "\($0.key)=\($0.value)" }.sorted())
            let extender = InPlaceExtender(excluded: excluded, store: nil, layerOptions: LayerWriteOptions(), log: { log.info($0) })
            let result: InPlaceExtender.Result
            do {
                result = try extender.extend(config: config, baseName: analyzed.buildImage?.reference ?? "build-image",
                                             dockerfiles: dockerfiles, kind: .build)
            } catch { throw LifecycleError.extensionApply(kind: "build", cause: error) }
            buildEnv = EnvEntry.dictionary(result.config.env ?? [])
        } else {
            log.info("No build.Dockerfile to apply")
        }
        // The build phase, as the CNB user (platform.md: the lifecycle SHALL proceed with the build phase).
        var inputs = try BuildPhaseCommand.inputs(options, env: buildEnv, api: api)
        inputs.user = (images.userID(env), images.groupID(env))
        try BuildPhase(inputs: inputs, log: log).run()
    }

    /// run.Dockerfiles in place, their changes recorded as the extended run image's layers.
    func extendRun(_ dockerfiles: [ExtensionDockerfile], analyzed: AnalyzedFile, excluded: [String], env: [String: String],
                   log: Logger) async throws {
        guard analyzed.runImage?.extend == true, !dockerfiles.isEmpty else {
            log.info("The run image is not extended: nothing to do")
            return
        }
        guard let runName = analyzed.runImage?.image ?? analyzed.runImage?.reference else {
            throw LifecycleError.missingInput(what: "no run image", hint: "\(options.analyzedPath(env)) names none")
        }
        let found = try await inLocation(images.location(env, log: log)) { try await $0.find(runName, layers: false) }
        guard let base = found else { throw LifecycleError.imageNotFound(role: "run image", reference: runName) }
        let dir = resolvePath(extended, CNBEnv.extendedDir, env, default: options.layersDirectory(env) + "/extended") + "/run"
        try? FileManager.default.removeItem(atPath: dir)
        let store: ImageStore
        do { store = try ImageStore(root: dir) } catch { throw LifecycleError.io(operation: "create", path: dir, reason: "\(error)") }
        let options = try LayerWriteOptions.fromEnvironment(env)
        let extender = InPlaceExtender(excluded: excluded, store: store, layerOptions: options, log: { log.info($0) })
        let result: InPlaceExtender.Result
        do {
            result = try extender.extend(config: base.image.config.config ?? ExecutionConfig(), baseName: runName,
                                         dockerfiles: dockerfiles, kind: .run)
        } catch { throw LifecycleError.extensionApply(kind: "run", cause: error) }
        var config = base.image.config
        config.created = options.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(options.mtime)
        config.rootfs.diffIDs += result.layers.map(\.diffID)
        config.history = (config.history ?? []) + result.history
        config.config = result.config
        do {
            let image = try store.beginWriteSession().commitManifest(config: config, layers: base.image.manifest.layers + result.layers.map(\.descriptor),
                                                 reference: runName)
            log.info("Extended run image \(image.digest): \(result.layers.count) new layer(s), rebasable: \(result.rebasable)")
        } catch {
            throw LifecycleError.imageIO(operation: "write", image: "the extended run image to \(dir)", cause: error)
        }
    }
}
