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

    /// The reserved prefix.
    public static let reservedPrefix = "CNB_"
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
    public static let system = "/cnb/system.toml"

    // Relative to <layers>
    public static let analyzedFile = "analyzed.toml"
    public static let groupFile = "group.toml"
    public static let planFile = "plan.toml"
    public static let orderFile = "order.toml"
    public static let generatedDir = "generated"
    public static let configMetadata = "config/metadata.toml"
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
    // builder
    public static let buildLifecycleError: Int32 = 50
    public static let buildpackBuildError: Int32 = 51
}

/// Deprecated stack IDs the specs still translate (buildpack.md, Deprecations > stacks).
public enum StackID {
    /// Translated to linux/amd64, ubuntu 18.04.
    public static let bionic = "io.buildpacks.stacks.bionic"
    /// Matches any target.
    public static let any = "*"
}
