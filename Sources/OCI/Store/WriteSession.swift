import FoundationEssentials

/// A store write. Everything that adds blobs or names to a store is here and not on `ImageStore`,
/// so code cannot write without a session (types, not a convention to remember): while a session
/// is open, `prune` waits, and so cannot take a blob between its write and the name that reaches
/// it. Each session has its own lock descriptor (a shared flock on `.cairn/gc.lock`), so sessions
/// in one process do not release each other's lock; it is released when the session is dropped.
/// A session may span async work (a pull) and other sessions (they share the lock). Within one
/// process, `prune` must not run while a session of the same store is open: it would wait for it.
///
/// Removing a name (`ImageStore.remove`) and recording where blobs came from are not here: they
/// add nothing `prune` could take.
public final class WriteSession: @unchecked Sendable {  // the lock is only released in deinit
    public let store: ImageStore
    private let lock: FileLock

    init(store: ImageStore) throws {
        self.store = store
        lock = try FileLock(path: store.root + "/.cairn/gc.lock")
        try lock.lock(exclusive: false)
    }

    deinit { lock.unlock() }

    /// Stores `data` as a blob; returns its descriptor.
    public func writeBlob(_ data: Data, mediaType: String) throws -> Descriptor {
        try store.writeBlobs([(data, mediaType)])[0]
    }

    /// Several small blobs, each synced and renamed into place, the directory synced once.
    public func writeBlobs(_ blobs: [(data: Data, mediaType: String)]) throws -> [Descriptor] {
        try store.writeBlobs(blobs)
    }

    /// Streams a blob into the store: `body` writes to the output; the bytes land under their
    /// digest only after they are complete and synced.
    public func writeBlob<T>(_ body: (any BlobOutput) throws -> T) throws -> (T, Digest, Int64) {
        try store.writeBlob(body)
    }

    /// Writes `directory` as a layer blob.
    public func writeLayer(directory: String, options: LayerWriteOptions) throws -> LayerResult {
        try store.writeBlob { out in try LayerWriter.write(directory: directory, options: options, to: out) }.0
    }

    /// Starts receiving a blob (a download): `PendingBlob.commit` verifies it and stores it.
    public func beginBlob() throws -> PendingBlob { try PendingBlob(store: store) }

    /// Makes a new image from `base` (or from nothing) plus `layers`, writes config and manifest,
    /// and records it under `reference`. Config `created` and history times are `created`
    /// (reproducible: SOURCE_DATE_EPOCH or the fixed time).
    public func commitImage(base: StoredImage?, layers: [LayerResult], history: [History], created: String,
                            reference: String, configure: (inout ImageConfig) -> Void = { _ in }) throws -> StoredImage {
        try store.commitImage(base: base, layers: layers, history: history, created: created, reference: reference, configure: configure)
    }

    /// Writes `config` and a manifest of `layers` (blobs already in the store) and, when
    /// `naming`, records it under `reference`.
    public func commitManifest(config: ImageConfig, layers: [Descriptor], reference: String, naming: Bool = true) throws -> StoredImage {
        try store.commitManifest(config: config, layers: layers, reference: reference, naming: naming)
    }

    /// Records `descriptor` under `reference` (replacing what the name pointed to before).
    public func tag(_ descriptor: Descriptor, as reference: String) throws {
        try store.tag([(descriptor, reference)])
    }

    /// Records several names in one update of the index.
    public func tag(_ entries: [(descriptor: Descriptor, reference: String)]) throws {
        try store.tag(entries)
    }

    /// Keeps `descriptor` (a manifest already in the store) and what it reaches through `prune`
    /// without a name: an unnamed index.json entry annotated with `holder`, which stays while
    /// `prune`'s `holds` says so. A campaign pins each old manifest it moves a name from, so that
    /// its rollback can put it back.
    public func pin(_ descriptor: Descriptor, holder: String) throws {
        try store.pin(descriptor, holder: holder)
    }

    /// Makes `descriptor`, named `reference`, the only image in the index (a layout that holds one
    /// image, as platform.md's per-reference layout paths do).
    public func setOnlyImage(_ descriptor: Descriptor, as reference: String) throws {
        try store.setOnlyImage(descriptor, as: reference)
    }
}

extension ImageStore {
    /// Opens a write session (released when the value is dropped).
    public func beginWriteSession() throws -> WriteSession { try WriteSession(store: self) }

    /// Runs `body` as one store write.
    public func writing<T>(_ body: (WriteSession) throws -> T) throws -> T {
        let session = try beginWriteSession()
        return try withExtendedLifetime(session) { try body(session) }
    }
}
