import Buildpacks
import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// The generate step of the detector (image_extension.md, Phase: Generation; platform.md,
/// detector): each selected image extension's `bin/generate` in group order, its Dockerfiles
/// checked and placed in `<generated>`, the run image chosen from them, and `<analyzed>` and
/// `<plan>` updated. Applying the Dockerfiles is the extender's job, not done here.
struct Generator {
    let inputs: DetectorInputs
    let log: Logger
    let store: BuildpackStore
    /// The environment of an extension's executables (the detector's, which is the build one).
    let environment: (ModuleDescriptor) throws -> [String: String]

    /// One extension's Dockerfile, as found in its output.
    struct Generated {
        var extensionID: BuildpackID
        var kind: Kind
        var path: String
        var effect: RunDockerfileEffect?
    }

    enum Kind: String { case build, run }

    /// Since Platform API 0.13 each extension writes straight into `<generated>/<id>/`
    /// (`build.Dockerfile`, `run.Dockerfile`, `extend-config.toml`, contexts); before, the
    /// lifecycle copies them to `<generated>/<kind>/<id>/Dockerfile`.
    var perExtensionLayout: Bool { inputs.platformAPI >= APIVersion(0, 13) }

    /// Runs generation for `group`'s extensions; returns the plan left for buildpacks.
    func run(group: GroupFile, plan: PlanFile) throws -> PlanFile {
        let extensions = group.groupExtensions ?? []
        let generatedDir = inputs.generatedDirectory
        try makeOwnedDirectory(generatedDir)
        let scratch = try makeTempDirectory(prefix: "cairn-generate", user: inputs.user)
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        var remaining = plan.entries
        var dockerfiles: [Generated] = []
        for element in extensions {
            let module = try store.lookup(element.id, version: element.version, kind: .extension)
            let outputDir = perExtensionLayout ? generatedDir + "/" + module.id.escaped : scratch + "/" + module.id.escaped + "-output"
            try? FileManager.default.removeItem(atPath: outputDir)   // outputs of an earlier build
            try makeOwnedDirectory(outputDir)

            // The extension's Buildpack Plan: the entries it provides (image_extension.md, Generation).
            let (bpPlan, planPath) = try writeBuildpackPlan(for: module, from: remaining, in: scratch, owner: inputs.user)

            let generate = module.directory + "/bin/generate"
            if FileManager.default.fileExists(atPath: generate) {
                log.info("Running generate for extension \(module.key)")
                var vars = try environment(module)
                vars[CNBEnv.outputDir] = outputDir
                vars[CNBEnv.bpPlanPath] = planPath
                // Positional arguments at every API, as the reference lifecycle passes them.
                let args = [outputDir, inputs.platformDirectory, planPath]
                let spec = ProcessSpec(path: generate, arguments: args, environment: vars,
                                       workingDirectory: inputs.appDirectory, user: inputs.user)
                let status = try ChildProcess.runModule(spec).status
                guard status == 0 else {
                    throw LifecycleError.extensionFailed(id: module.id.value, version: module.version, status: status)
                }
            } else {
                // No bin/generate: <extension>/generate is the pre-populated output directory.
                let prepared = module.directory + "/generate"
                if FileManager.default.fileExists(atPath: prepared) {
                    log.info("Using the prepared output of extension \(module.key) (it has no bin/generate)")
                    try copyContents(of: prepared, to: outputDir)
                } else {
                    log.debug("Extension \(module.key) has neither bin/generate nor generate/: nothing to generate")
                }
            }
            dockerfiles += try checkOutput(outputDir, of: module)
            let met = Set(bpPlan.entries.map(\.name))
            remaining.removeAll { $0.requires.contains { met.contains($0.name) } }
            if !perExtensionLayout { try placeLegacy(outputDir, of: module, dockerfiles: dockerfiles.filter { $0.extensionID == module.id }) }
        }

        try updateAnalyzed(dockerfiles)
        return PlanFile(entries: remaining)
    }

    // MARK: Outputs

    /// Checks an extension's output directory; returns its Dockerfiles (run before build).
    func checkOutput(_ dir: String, of module: ModuleDescriptor) throws -> [Generated] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
        if let sbom = names.first(where: { $0.contains(".sbom.") }) {
            throw LifecycleError.extensionOutputInvalid(id: module.id.value,
                detail: "\(dir)/\(sbom): image extensions must not write SBOM files")
        }
        if names.contains("context") && (names.contains("context.run") || names.contains("context.build")) {
            throw LifecycleError.extensionOutputInvalid(id: module.id.value,
                detail: "\(dir): \"context\" cannot be combined with \"context.run\" or \"context.build\"")
        }
        // The lifecycle reads these files with its own privileges: only regular files, so an
        // extension cannot point them elsewhere with a symlink.
        for name in ["run.Dockerfile", "build.Dockerfile", "extend-config.toml"] where names.contains(name) {
            let type = (try? fm.attributesOfItem(atPath: dir + "/" + name))?[.type] as? FileAttributeType
            guard type == .typeRegular else {
                throw LifecycleError.extensionOutputInvalid(id: module.id.value, detail: "\(dir)/\(name) must be a regular file")
            }
        }
        let extendConfig = dir + "/extend-config.toml"
        if fm.fileExists(atPath: extendConfig) {
            do { _ = try TOMLFile.read(ExtendConfigFile.self, from: extendConfig) } catch {
                throw LifecycleError.extensionOutputInvalid(id: module.id.value, detail: "\(error)")
            }
        }

        var out: [Generated] = []
        for kind in [Kind.run, .build] {
            let path = dir + "/" + kind.rawValue + ".Dockerfile"
            guard fm.fileExists(atPath: path) else { continue }
            let dockerfile: Dockerfile
            var effect: RunDockerfileEffect?
            do {
                guard let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                    throw TOMLFileError.unreadable(file: path, reason: "unreadable or not UTF-8 text")
                }
                dockerfile = try Dockerfile(parsing: text, file: path)
                if kind == .build { try dockerfile.validateAsBuildDockerfile(file: path) }
                else { effect = try dockerfile.validateAsRunDockerfile(file: path) }
            } catch let e as TOMLFileError {
                throw LifecycleError.extensionOutputInvalid(id: module.id.value, detail: e.description)
            }
            for i in dockerfile.unrecommended {
                log.warn("\(path): line \(i.line): \(i.keyword) is not recommended in a \(kind.rawValue).Dockerfile")
            }
            out.append(Generated(extensionID: module.id, kind: kind, path: path, effect: effect))
        }
        return out
    }

    /// Platform API < 0.13: `<generated>/<kind>/<id>/Dockerfile` with the extend config beside it;
    /// context directories go to `<generated>/<id>/`.
    func placeLegacy(_ outputDir: String, of module: ModuleDescriptor, dockerfiles: [Generated]) throws {
        let fm = FileManager.default
        for d in dockerfiles {
            let target = inputs.generatedDirectory + "/" + d.kind.rawValue + "/" + module.id.escaped
            try? fm.removeItem(atPath: target)
            try makeOwnedDirectory(target)
            try copyItem(d.path, to: target + "/Dockerfile")
            let config = outputDir + "/extend-config.toml"
            if fm.fileExists(atPath: config) { try copyItem(config, to: target + "/extend-config.toml") }
        }
        for context in ["context", "context.build", "context.run"] where fm.fileExists(atPath: outputDir + "/" + context) {
            let target = inputs.generatedDirectory + "/" + module.id.escaped
            try makeOwnedDirectory(target)
            try? fm.removeItem(atPath: target + "/" + context)
            try copyItem(outputDir + "/" + context, to: target + "/" + context)
        }
    }

    /// Where a Dockerfile lives once placed in `<generated>`.
    func placedPath(_ d: Generated) -> String {
        perExtensionLayout ? d.path
            : inputs.generatedDirectory + "/" + d.kind.rawValue + "/" + d.extensionID.escaped + "/Dockerfile"
    }

    // MARK: analyzed.toml

    /// Chooses the run image from the run.Dockerfiles (platform.md, detector) and records whether
    /// the build and run images are to be extended.
    func updateAnalyzed(_ dockerfiles: [Generated]) throws {
        var analyzed = try readFileIfPresent(AnalyzedFile.self, inputs.analyzedPath) ?? AnalyzedFile()
        let runFiles = dockerfiles.filter { $0.kind == .run }
        if let switchIndex = runFiles.lastIndex(where: { $0.effect?.newBase != nil }) {
            let chosen = runFiles[switchIndex]
            let image = chosen.effect!.newBase!
            // Dockerfiles before the one that switches the run image have no effect: kept as .ignore.
            for earlier in runFiles[..<switchIndex] {
                let path = placedPath(earlier)
                try? FileManager.default.removeItem(atPath: path + ".ignore")
                do { try FileManager.default.moveItem(atPath: path, toPath: path + ".ignore") } catch {
                    throw LifecycleError.io(operation: "rename", path: path, reason: "\(error)")
                }
            }
            // The switching Dockerfile's own instructions after FROM extend the new image too.
            let extend = chosen.effect!.extends || switchIndex < runFiles.count - 1
            if image != analyzed.runImage?.image {
                if try !runTOMLNames(image) {
                    log.warn("run image \(image) chosen by extension \(chosen.extensionID) is not listed in \(inputs.runPath)")
                }
                log.info("Run image switched to \(image) by extension \(chosen.extensionID)")
                analyzed.runImage = .init(image: image, reference: nil, extend: extend, target: nil)
            } else {
                analyzed.runImage?.extend = extend
            }
        } else if !runFiles.isEmpty {
            // Every run.Dockerfile builds FROM ${base_image}: the original run image, extended.
            if analyzed.runImage == nil { analyzed.runImage = .init() }
            analyzed.runImage?.extend = true
        }
        var buildImage = analyzed.buildImage ?? AnalyzedFile.BuildImage()
        buildImage.extend = dockerfiles.contains { $0.kind == .build }
        analyzed.buildImage = buildImage
        try writeFile(analyzed, inputs.analyzedPath, owner: inputs.user)
    }

    /// Whether run.toml lists `image` (as an image or a mirror); true when there is no run.toml.
    func runTOMLNames(_ image: String) throws(LifecycleError) -> Bool {
        guard let run = try readFileIfPresent(RunFile.self, inputs.runPath) else { return true }
        return run.images.contains { $0.image == image || ($0.mirrors ?? []).contains(image) }
    }

    // MARK: Files

    func makeOwnedDirectory(_ path: String) throws {
        try Phases.makeOwnedDirectory(path, user: inputs.user)
    }

    func copyItem(_ from: String, to: String) throws {
        do { try FileManager.default.copyItem(atPath: from, toPath: to) } catch {
            throw LifecycleError.io(operation: "copy \(from) to", path: to, reason: "\(error)")
        }
    }

    func copyContents(of dir: String, to target: String) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw LifecycleError.io(operation: "list", path: dir, reason: "\(error)")
        }
        for name in names.sorted() { try copyItem(dir + "/" + name, to: target + "/" + name) }
    }
}
