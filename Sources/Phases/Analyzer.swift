import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Inputs of the analyze phase (platform.md, analyzer).
public struct AnalyzerInputs: Sendable {
    public var image: String
    public var previousImage: String?
    public var runImage: String?
    public var runPath: String
    public var analyzedPath: String
    public var location: ImageLocation
    public var platformAPI: APIVersion
    /// `-skip-layers`: the previous image is identified but its layer metadata not recorded.
    public var skipLayers: Bool
    /// `runPath` is a stack.toml (Platform API < 0.12), not a run.toml.
    public var runPathIsStackFile = false

    public init(image: String, previousImage: String?, runImage: String?, runPath: String, analyzedPath: String,
                location: ImageLocation, platformAPI: APIVersion, skipLayers: Bool = false) {
        self.skipLayers = skipLayers
        self.image = image
        self.previousImage = previousImage
        self.runImage = runImage
        self.runPath = runPath
        self.analyzedPath = analyzedPath
        self.location = location
        self.platformAPI = platformAPI
    }
}

/// The analyze phase: the previous image's layer metadata and the run image's identity and
/// target data go to analyzed.toml.
public struct Analyzer {
    let inputs: AnalyzerInputs
    let log: Logger

    public init(inputs: AnalyzerInputs, log: Logger) {
        self.inputs = inputs
        self.log = log
    }

    @discardableResult
    public func run() async throws(LifecycleError) -> AnalyzedFile {
        do { _ = try ImageReference(parsing: inputs.image) } catch { throw .invalidReference(inputs.image, cause: error) }
        var analyzed = AnalyzedFile()

        let previousName = inputs.previousImage ?? inputs.image
        // The run image is read while the previous image is; a failure to name it is still
        // reported after the previous image, as before.
        let resolved = Result { () throws(LifecycleError) in try resolveRunImage() }
        let prefetch = try? inputs.location.prefetch(resolved.get())
        defer { prefetch?.cancel() }
        if let previous = try await inputs.location.find(previousName, layers: false) {
            analyzed.image = .init(reference: inputs.location.uniqueReference(previousName, previous.image))
            if !inputs.skipLayers, let label = previous.image.config.config?.labels?[CNBLabel.lifecycleMetadata] {
                do { analyzed.metadata = try JSONDecoder().decode(AnyTOML.self, from: Data(label.utf8)) } catch {
                    log.warn("previous image \(previousName): label \(CNBLabel.lifecycleMetadata) is not valid JSON, so none of its layers is reused: \(error)")
                }
            }
            log.info("Previous image \(previousName) found: \(previous.image.digest)")
        } else {
            log.info("Previous image \(previousName) not found")
        }

        let runName = try resolved.get()
        guard let run = try await prefetch?.value.get() else { throw .imageNotFound(role: "run image", reference: runName) }
        analyzed.runImage = .init(image: runName, reference: inputs.location.uniqueReference(runName, run.image),
                                  target: targetData(of: run.image.config))
        try writeFile(analyzed, inputs.analyzedPath)
        return analyzed
    }

    /// `-run-image`, else run.toml's first image (platform.md, Run Image Resolution: the one on
    /// the app image's registry when a mirror is there).
    func resolveRunImage() throws(LifecycleError) -> String {
        if let r = inputs.runImage, !r.isEmpty { return r }
        guard let run = try readRunFile(inputs.runPath, stackFile: inputs.runPathIsStackFile), let first = run.images.first else {
            throw .missingInput(what: "no run image", hint: "pass -run-image or provide \(inputs.runPath) with "
                                + (inputs.runPathIsStackFile ? "[run-image] image" : "[[images]]"))
        }
        return RunImageResolution.choose(image: first.image, mirrors: first.mirrors ?? [], forApp: inputs.image)
    }
}

/// The run images the platform lists: run.toml, or stack.toml for Platform API < 0.12.
func readRunFile(_ path: String, stackFile: Bool) throws(LifecycleError) -> RunFile? {
    stackFile ? try readFileIfPresent(StackFile.self, path)?.asRunFile : try readFileIfPresent(RunFile.self, path)
}

/// An image's target data (platform.md, Target Data): os, architecture and variant from its
/// config; distro and target ID from its `io.buildpacks.base.*` labels.
func targetData(of config: ImageConfig) -> TargetData {
    let labels = config.config?.labels ?? [:]
    var target = TargetData(os: config.os, arch: config.architecture, variant: config.variant)
    if labels[CNBLabel.baseDistroName] != nil || labels[CNBLabel.baseDistroVersion] != nil {
        target.distro = .init(name: labels[CNBLabel.baseDistroName], version: labels[CNBLabel.baseDistroVersion])
    }
    target.id = labels[CNBLabel.baseID]
    return target
}
