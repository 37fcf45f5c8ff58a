/// Environment variable names of the specs — the only place `CNB_` literals appear.
public enum CNBEnv {
    // Platform inputs (platform.md, phase Inputs tables)
    public static let platformAPI = "CNB_PLATFORM_API"
    public static let analyzedPath = "CNB_ANALYZED_PATH"
    public static let appDir = "CNB_APP_DIR"
    public static let buildConfigDir = "CNB_BUILD_CONFIG_DIR"
    public static let buildpacksDir = "CNB_BUILDPACKS_DIR"
    public static let execEnv = "CNB_EXEC_ENV"
    public static let extensionsDir = "CNB_EXTENSIONS_DIR"
    public static let generatedDir = "CNB_GENERATED_DIR"
    public static let groupPath = "CNB_GROUP_PATH"
    public static let layersDir = "CNB_LAYERS_DIR"
    public static let logLevel = "CNB_LOG_LEVEL"
    public static let orderPath = "CNB_ORDER_PATH"
    public static let planPath = "CNB_PLAN_PATH"
    public static let platformDir = "CNB_PLATFORM_DIR"
    public static let runPath = "CNB_RUN_PATH"
    public static let systemPath = "CNB_SYSTEM_PATH"
    public static let userID = "CNB_USER_ID"
    public static let groupID = "CNB_GROUP_ID"
    public static let registryAuth = "CNB_REGISTRY_AUTH"
    public static let insecureRegistries = "CNB_INSECURE_REGISTRIES"

    // Buildpack inputs (buildpack.md, Detection and Build tables)
    public static let buildPlanPath = "CNB_BUILD_PLAN_PATH"
    public static let buildpackDir = "CNB_BUILDPACK_DIR"
    public static let extensionDir = "CNB_EXTENSION_DIR"
    public static let bpPlanPath = "CNB_BP_PLAN_PATH"
    public static let outputDir = "CNB_OUTPUT_DIR"

    // Targets (buildpack.md, Environment > Targets)
    public static let targetOS = "CNB_TARGET_OS"
    public static let targetArch = "CNB_TARGET_ARCH"
    public static let targetArchVariant = "CNB_TARGET_ARCH_VARIANT"
    public static let targetDistroName = "CNB_TARGET_DISTRO_NAME"
    public static let targetDistroVersion = "CNB_TARGET_DISTRO_VERSION"

    // Export, analysis, cache (platform.md, exporter/analyzer/restorer Inputs)
    public static let cacheDir = "CNB_CACHE_DIR"
    public static let cacheImage = "CNB_CACHE_IMAGE"
    public static let launchCacheDir = "CNB_LAUNCH_CACHE_DIR"
    public static let useDaemon = "CNB_USE_DAEMON"
    public static let useLayout = "CNB_USE_LAYOUT"
    public static let layoutDir = "CNB_LAYOUT_DIR"
    public static let parallelExport = "CNB_PARALLEL_EXPORT"
    public static let processType = "CNB_PROCESS_TYPE"
    public static let projectMetadataPath = "CNB_PROJECT_METADATA_PATH"
    public static let reportPath = "CNB_REPORT_PATH"
    public static let extendedDir = "CNB_EXTENDED_DIR"
    public static let extendKind = "CNB_EXTEND_KIND"
    public static let previousImage = "CNB_PREVIOUS_IMAGE"
    public static let runImage = "CNB_RUN_IMAGE"
    /// stack.toml, Platform API < 0.12.
    public static let stackPath = "CNB_STACK_PATH"
    public static let buildImage = "CNB_BUILD_IMAGE"
    public static let skipLayers = "CNB_SKIP_LAYERS"
    public static let skipRestore = "CNB_SKIP_RESTORE"
    public static let forceRebase = "CNB_FORCE_REBASE"
    public static let experimentalMode = "CNB_EXPERIMENTAL_MODE"
    /// The rebaser's layer patches file (experimental; RFC #333).
    public static let layerPatchesFile = "CNB_LAYER_PATCHES_FILE"
    /// Cairn's own: export to and read from a Cairn image store (an OCI layout with names).
    public static let cairnStore = "CNB_CAIRN_STORE"

    /// The reserved prefix.
    public static let reservedPrefix = "CNB_"
}

/// Image config labels (platform.md, Labels; buildpack.md; Target Data).
public enum CNBLabel {
    public static let lifecycleMetadata = "io.buildpacks.lifecycle.metadata"
    public static let buildMetadata = "io.buildpacks.build.metadata"
    public static let projectMetadata = "io.buildpacks.project.metadata"
    public static let rebasable = "io.buildpacks.rebasable"
    /// The execution environment an app image was built for (Platform API 0.15+, as the reference writes it).
    public static let execEnv = "io.buildpacks.exec-env"
    public static let baseID = "io.buildpacks.base.id"
    public static let baseDistroName = "io.buildpacks.base.distro.name"
    public static let baseDistroVersion = "io.buildpacks.base.distro.version"
    public static let baseMaintainer = "io.buildpacks.base.maintainer"
    public static let baseHomepage = "io.buildpacks.base.homepage"
    public static let baseDescription = "io.buildpacks.base.description"
    public static let baseReleased = "io.buildpacks.base.released"
    public static let stackID = "io.buildpacks.stack.id"
    /// The run image's labels an app image carries and a rebase replaces (platform.md, rebaser).
    public static let runImageLabelPrefixes = ["io.buildpacks.base.", "io.buildpacks.stack."]
    public static let stackMixins = "io.buildpacks.stack.mixins"
    public static let builderMetadata = "io.buildpacks.builder.metadata"
    public static let buildpackLayers = "io.buildpacks.buildpack.layers"
    public static let buildpackOrder = "io.buildpacks.buildpack.order"
    public static let extensionLayers = "io.buildpacks.extension.layers"
    public static let buildpackageMetadata = "io.buildpacks.buildpackage.metadata"
    /// On a lifecycle image (as buildpacksio/lifecycle carries them).
    public static let lifecycleVersion = "io.buildpacks.lifecycle.version"
    public static let lifecycleAPIs = "io.buildpacks.lifecycle.apis"
    public static let orderExtensions = "io.buildpacks.buildpack.order-extensions"
    /// Cairn's cache image/dir metadata (not a spec label; the spec leaves the cache format open).
    public static let cacheMetadata = "io.buildpacks.lifecycle.cache.metadata"
}

/// Default paths of platform.md's Inputs tables.
public enum CNBPath {
    public static let app = "/workspace"
    public static let buildConfig = "/cnb/build-config"
    public static let buildpacks = "/cnb/buildpacks"
    public static let extensions = "/cnb/extensions"
    public static let layers = "/layers"
    public static let platform = "/platform"
    public static let order = "/cnb/order.toml"
    public static let run = "/cnb/run.toml"
    /// Platform API < 0.12.
    public static let stack = "/cnb/stack.toml"
    public static let system = "/cnb/system.toml"

    // Relative to <layers>
    public static let analyzedFile = "analyzed.toml"
    public static let groupFile = "group.toml"
    public static let planFile = "plan.toml"
    public static let orderFile = "order.toml"
    public static let generatedDir = "generated"
    public static let configMetadata = "config/metadata.toml"
    /// `<layers>/sbom`: the builder's copies of the buildpacks' SBOM files (launch/, build/).
    public static let sbomDir = "sbom"
    public static let reportFile = "report.toml"
    public static let projectMetadataFile = "project-metadata.toml"
    public static let launcher = "/cnb/lifecycle/launcher"
    public static let lifecycleDir = "/cnb/lifecycle"
    public static let processDir = "/cnb/process"
}

/// Execution environments (buildpack.md, Execution Environments).
public enum ExecEnv {
    public static let production = "production"
    public static let any = "*"
}

/// Exit codes of platform.md, one table for every phase.
public enum LifecycleExit {
    public static let success: Int32 = 0
    public static let genericError: Int32 = 1
    public static let incompatiblePlatformAPI: Int32 = 11
    public static let incompatibleBuildpackAPI: Int32 = 12
    // detector
    public static let detectFailedNoError: Int32 = 20
    public static let detectFailedWithError: Int32 = 21
    public static let detectLifecycleError: Int32 = 22
    public static let generateError: Int32 = 91
    public static let generateLifecycleError: Int32 = 92
    // builder
    public static let buildLifecycleError: Int32 = 50
    public static let buildpackBuildError: Int32 = 51
    /// A buildpack's output (layer TOML, launch.toml, SBOM files) is invalid: one of the
    /// build-specific lifecycle codes, the one the reference lifecycle uses.
    public static let buildpackOutputInvalid: Int32 = 52
    // analyzer, restorer, exporter, rebaser, launcher
    public static let analyzeError: Int32 = 30
    public static let restoreError: Int32 = 40
    public static let exportError: Int32 = 62
    public static let rebaseError: Int32 = 70
    /// Extension-specific lifecycle errors (extender): 100–109.
    public static let extendError: Int32 = 100
    public static let launchError: Int32 = 82
}

/// Deprecated stack IDs the specs still translate (buildpack.md, Deprecations > stacks).
public enum StackID {
    /// Translated to linux/amd64, ubuntu 18.04.
    public static let bionic = "io.buildpacks.stacks.bionic"
    /// Matches any target.
    public static let any = "*"
}

/// The version of Cairn: its lifecycle, its launcher (recorded in `io.buildpacks.build.metadata`)
/// and its CLI.
public let cairnVersion = "0.1.0"

/// The lifecycle's phases, as platform.md names their executables (`/cnb/lifecycle/<phase>`).
public enum LifecyclePhase: String, CaseIterable, Sendable {
    case analyzer, detector, restorer, extender, builder, exporter, rebaser, creator
}
