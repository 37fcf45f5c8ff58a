import Buildpacks
import FoundationEssentials
import CNBCore
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Where the phases read and write images (platform.md: a registry, an OCI layout directory with
/// the spec's reference-to-path mapping, or — Cairn's own — an image store).
public enum ImageLocation: Sendable {
    /// A Cairn image store: one OCI layout holding every image by name.
    case store(ImageStore)
    /// `<layout-dir>`: each image in its own OCI layout at the mapped path.
    case layout(root: String)
    /// A registry; images read from it are pulled into `work`, images exported are built there
    /// and pushed.
    case registry(RegistryClient, work: ImageStore)

    /// platform.md, "Map an image reference to a path in the layout directory". platform.md does
    /// not name Docker Hub's host; the reference lifecycle (go-containerregistry) writes and reads
    /// `index.docker.io`, so that is where images are placed; `docker.io` is also read
    /// (`existingLayoutPath`), where earlier Cairn versions put them.
    public static func layoutPath(root: String, reference: String) throws(LifecycleError) -> String {
        try layoutPath(root: root, reference: reference, dockerHubDirectory: layoutDockerHub)
    }

    /// The directory Docker Hub images are placed under in a layout directory.
    public static let layoutDockerHub = "index.docker.io"

    static func layoutPath(root: String, reference: String, dockerHubDirectory: String) throws(LifecycleError) -> String {
        let ref: ImageReference
        do { ref = try ImageReference(parsing: reference) } catch { throw .invalidReference(reference, cause: error) }
        let registry = ref.registry == ImageReference.dockerHub ? dockerHubDirectory : ref.registry
        let base = root + "/" + registry + "/" + ref.repository
        if let digest = ref.digest, ref.tag == nil { return base + "/" + digest.algorithm + "/" + digest.encoded }
        return base + "/" + (ref.tag ?? ImageReference.defaultTag)
    }

    /// Finds an image, or nil when it does not exist. From a registry, `layers: false` fetches
    /// only manifest and config (the export pushes by mount or skips what the registry has).
    /// From an image index, the entry for `platform`.
    public func find(_ reference: String, layers: Bool = true, platform: Platform = .host) async throws(LifecycleError) -> LocatedImage? {
        do {
            switch self {
            case .store(let store):
                do {
                    let image = try store.resolve(reference, platform: platform)
                    return LocatedImage(store: store, image: image)
                } catch OCIError.notFound {
                    return nil
                }
            case .layout(let root):
                guard let path = try Self.existingLayoutPath(root: root, reference: reference) else { return nil }
                let store = try ImageStore(root: path)
                guard let first = try store.index().manifests.first else { return nil }
                return LocatedImage(store: store, image: try store.load(first, name: reference, platform: platform))
            case .registry(let client, let work):
                let ref = try ImageReference(parsing: reference)
                do {
                    // The work store is read by digest: naming images there only rewrites its index.
                    let image = try await ImageTransfer(client: client, store: work).pull(ref, platform: platform, layers: layers, naming: false)
                    return LocatedImage(store: work, image: image)
                } catch RegistryError.notFound {
                    return nil
                }
            }
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .imageIO(operation: "read", image: "image \(reference)", cause: error)
        }
    }

    /// The layout directory holding `reference`: its mapped path; for a digest reference whose
    /// mapped path is empty, the tag directory of the same repository whose image has that digest
    /// (analyzed.toml names the previous image by digest; it was written under its tag).
    public static func existingLayoutPath(root: String, reference: String) throws(LifecycleError) -> String? {
        // `<path>@<digest>`, as analyzed.toml names an image in a layout directory.
        if reference.hasPrefix("/"), let at = reference.lastIndex(of: "@") {
            let path = String(reference[..<at])
            let digest = String(reference[reference.index(after: at)...])
            guard FileManager.default.fileExists(atPath: path + "/index.json"), let store = try? ImageStore(root: path), let first = try? store.index().manifests.first,
                  first.digest.description == digest else { return nil }
            return path
        }
        for hub in [layoutDockerHub, ImageReference.dockerHub] {
            if let path = try existingLayoutPath(root: root, reference: reference, dockerHubDirectory: hub) { return path }
        }
        return nil
    }

    static func existingLayoutPath(root: String, reference: String, dockerHubDirectory hub: String) throws(LifecycleError) -> String? {
        let path = try layoutPath(root: root, reference: reference, dockerHubDirectory: hub)
        if FileManager.default.fileExists(atPath: path + "/index.json") { return path }
        guard let ref = try? ImageReference(parsing: reference), let digest = ref.digest else { return nil }
        let repository = root + "/" + (ref.registry == ImageReference.dockerHub ? hub : ref.registry) + "/" + ref.repository
        for tag in ((try? FileManager.default.contentsOfDirectory(atPath: repository)) ?? []).sorted() {
            let candidate = repository + "/" + tag
            guard FileManager.default.fileExists(atPath: candidate + "/index.json"), let store = try? ImageStore(root: candidate),
                  let first = try? store.index().manifests.first, first.digest == digest else { continue }
            return candidate
        }
        return nil
    }

    /// Starts reading `reference` (manifest and config) while the caller reads something else:
    /// in a registry, a round trip saved. Await `value.get()` for `find`'s answer; cancel when
    /// it is not needed.
    public func prefetch(_ reference: String) -> Task<Result<LocatedImage?, LifecycleError>, Never> {
        Task {
            do throws(LifecycleError) { return .success(try await find(reference, layers: false)) } catch { return .failure(error) }
        }
    }

    /// A reference that uniquely identifies `image` here (platform.md, analyzed.toml: a digest
    /// reference in a registry; in a layout directory the image's path, `<path>@<digest>` as the
    /// reference lifecycle writes it).
    public func uniqueReference(_ reference: String, _ image: StoredImage) -> String {
        if case .layout(let root) = self,
           let path = (try? Self.existingLayoutPath(root: root, reference: reference)) ?? (try? Self.layoutPath(root: root, reference: reference)) {
            return path + "@" + image.digest.description
        }
        guard let ref = try? ImageReference(parsing: reference) else { return image.digest.description }
        return ref.familiarName + "@" + image.digest.description
    }

    /// Whether images assembled here are named in their store (not in a registry's work store,
    /// where they are pushed and read by digest).
    public var namesAssembledImages: Bool {
        if case .registry = self { return false }
        return true
    }

    /// The store an image exported to `reference` is assembled in.
    public func destination(for reference: String) throws(LifecycleError) -> ImageStore {
        switch self {
        case .store(let store): return store
        case .registry(_, let work): return work
        case .layout(let root):
            let path = try Self.layoutPath(root: root, reference: reference)
            do { return try ImageStore(root: path) } catch { throw .io(operation: "create layout", path: path, reason: "\(error)") }
        }
    }

    /// Makes `image` (assembled in `store`) available as `reference`: names it in a store or
    /// layout, pushes it to a registry.
    public func publish(_ image: StoredImage, from store: ImageStore, as reference: String) async throws(LifecycleError) {
        do {
            switch self {
            case .store(let target):
                try target.beginWriteSession().tag(image.descriptor, as: reference)
            case .layout:
                // The path is the reference: its layout holds this image and no other.
                let target = try destination(for: reference).beginWriteSession()
                try copyImage(image, from: store, to: target)
                try target.setOnlyImage(image.descriptor, as: reference)
            case .registry(let client, _):
                try await ImageTransfer(client: client, store: store).push(image, to: try ImageReference(parsing: reference))
            }
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .imageIO(operation: "write", image: "image \(reference)", cause: error)
        }
    }
}

/// Registry settings as platform.md gives them: credentials from `CNB_REGISTRY_AUTH`, else the
/// docker config; plain HTTP only for the named registries (`insecure` plus
/// `CNB_INSECURE_REGISTRIES`, comma-separated); an optional CA bundle.
public func registryConfiguration(environment: [String: String], insecure: [String], caBundle: String? = nil) throws -> RegistryConfiguration {
    var config = RegistryConfiguration(credentials: try CredentialStore(registryAuthJSON: environment[CNBEnv.registryAuth], environment: environment))
    let fromEnv = (environment[CNBEnv.insecureRegistries] ?? "").split(separator: ",").map { $0.trimmed }
    config.insecureRegistries = Set(insecure + fromEnv.filter { !$0.isEmpty })
    config.caBundlePath = caBundle
    return config
}

/// An image and the store holding its blobs.
public struct LocatedImage: Sendable {
    public var store: ImageStore
    public var image: StoredImage

    public init(store: ImageStore, image: StoredImage) {
        self.store = store
        self.image = image
    }
}

/// A write session on `store` (see `WriteSession`), its failure as the lifecycle's error.
public func writeSession(_ store: ImageStore, for what: String) throws(LifecycleError) -> WriteSession {
    do { return try store.beginWriteSession() } catch {
        throw .io(operation: "open for writing (\(what))", path: store.root, reason: "\(error)")
    }
}

/// Copies the blobs of `image` (manifest, config, layers) into `target`, hard-linking where the
/// file system allows.
public func copyImage(_ image: StoredImage, from source: ImageStore, to target: WriteSession) throws {
    guard source.root != target.store.root else { return }
    for d in [image.descriptor, image.manifest.config] + image.manifest.layers {
        try copyBlob(d.digest, from: source, to: target)
    }
}

/// Copies one blob between stores (hard link, else a streamed copy committed atomically). A
/// scratch store's file was never synced, so one linked into a durable store is synced first.
public func copyBlob(_ digest: Digest, from source: ImageStore, to target: WriteSession) throws {
    guard source.root != target.store.root, !target.store.hasBlob(digest) else { return }
    let from = source.blobPath(digest)
    if target.store.durable && !source.durable {
        let fd = open(from, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
    if link(from, target.store.blobPath(digest)) == 0 || errno == EEXIST { return }
    let pending = try target.beginBlob()
    let fd = open(from, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw LifecycleError.io(operation: "read", path: from, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw LifecycleError.io(operation: "read", path: from, reason: String(cString: strerror(errno))) }
        if n == 0 { break }
        try buffer.withUnsafeBytes { try pending.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    try pending.commit(expected: digest, size: nil, what: "blob \(digest)")
}

extension StoredImage {
    /// Its `io.buildpacks.lifecycle.metadata` label, decoded (the one place it is); nil when the
    /// image has none.
    /// - Throws: `LifecycleError.label` naming the image and label when it is not valid.
    public func lifecycleMetadata() throws(LifecycleError) -> LifecycleMetadataLabel? {
        try decodedLabel(CNBLabel.lifecycleMetadata)
    }

    /// A cache image's `io.buildpacks.lifecycle.cache.metadata` label (the same shape).
    public func cacheMetadata() throws(LifecycleError) -> LifecycleMetadataLabel? {
        try decodedLabel(CNBLabel.cacheMetadata)
    }

    func decodedLabel(_ key: String) throws(LifecycleError) -> LifecycleMetadataLabel? {
        guard let raw = config.config?.labels?[key] else { return nil }
        do { return try JSONDecoder().decode(LifecycleMetadataLabel.self, from: Data(raw.utf8)) } catch {
            throw .label(image: "image \(name ?? digest.description)", label: key, reason: "is not valid", cause: error)
        }
    }
}
