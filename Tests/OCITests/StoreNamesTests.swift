import Foundation
import OCI
import Testing
import TestSupport

/// A store opened with `artifactSubject` (`tag(_:retiring:)`): when a name moves to another
/// manifest, the artifact names about the manifest it left go in the same index update, unless something else in the index still
/// reaches that manifest (another name, a pin, an index, a subject), as `prune` decides.
@Suite struct StoreNamesTests {
    /// `repo:sha256-<hex>.sig` names a signature of `<hex>` (cosign's scheme, as Trust reads it).
    static func subject(_ name: String) -> Digest? {
        guard let tag = name.split(separator: ":").last, tag.hasPrefix("sha256-"), tag.hasSuffix(".sig") else { return nil }
        return Digest("sha256:" + tag.dropFirst(7).dropLast(4))
    }

    struct Fixture {
        let tmp = TempDir()
        let store: ImageStore
        let old: StoredImage, new: StoredImage, signature: StoredImage
        init() throws {
            store = try ImageStore(root: tmp.sub("store"), artifactSubject: StoreNamesTests.subject)
            for (dir, text) in [("a", "old"), ("b", "new"), ("s", "signature")] { try writeFile(tmp.sub(dir) + "/f", text) }
            old = try importImage(store, tmp.sub("a"), as: "app:1")
            new = try importImage(store, tmp.sub("b"), as: "scratch:new")
            signature = try importImage(store, tmp.sub("s"), as: "scratch:sig")
            try store.beginWriteSession().tag(signature.descriptor, as: sigName(old))
        }
        func sigName(_ image: StoredImage) -> String { "app:sha256-\(image.digest.encoded).sig" }
        func moveName() throws {
            try store.beginWriteSession().tag(new.descriptor, as: "app:1")
        }
        var names: [String] { get throws { try store.index().manifests.compactMap { $0.annotations?[Annotation.refName] } } }
    }

    @Test func theOldImagesSignatureNameGoesWithItsLastName() throws {
        let f = try Fixture()
        try f.moveName()
        #expect(try f.store.resolve("app:1").digest == f.new.digest)
        #expect(try !f.names.contains(f.sigName(f.old)))
        #expect(f.store.hasBlob(f.signature.digest), "blobs stay until prune")
    }

    @Test func anotherNamePinOrSubjectKeepsIt() throws {
        // Another name.
        let named = try Fixture()
        try named.store.beginWriteSession().tag(named.old.descriptor, as: "app:kept")
        try named.moveName()
        #expect(try named.names.contains(named.sigName(named.old)))
        // A pin (a campaign's rollback point).
        let pinned = try Fixture()
        try pinned.store.beginWriteSession().pin(pinned.old.descriptor, holder: "/campaign")
        try pinned.moveName()
        #expect(try pinned.names.contains(pinned.sigName(pinned.old)))
        // A manifest whose subject is the old image, under a plain name.
        let referred = try Fixture()
        var manifest = referred.new.manifest
        manifest.subject = referred.old.descriptor
        let session = try referred.store.beginWriteSession()
        let blob = try session.writeBlob(try CanonicalJSON.encode(manifest), mediaType: MediaType.ociManifest)
        try session.tag(blob, as: "notes:1")
        try referred.moveName()
        #expect(try referred.names.contains(referred.sigName(referred.old)))
    }

    @Test func rfc3339MatchesFoundationsISO8601Style() {
        var seconds: [Int64] = [0, 1, 59, 951_782_400, 1_700_000_000, 4_102_444_799, 253_402_300_799]
        var state: UInt64 = 42
        for _ in 0..<2000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            seconds.append(Int64(state >> 31) % 253_402_300_800)
        }
        for s in seconds {
            #expect(rfc3339(s) == Date(timeIntervalSince1970: TimeInterval(s)).formatted(.iso8601), "\(s)")
        }
    }
}
