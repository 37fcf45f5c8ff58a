import CairnPlatform
import Foundation
import OCI

/// `--remote` on inspect and sbom: the image read from its registry into a scratch store (its
/// manifest and config, plus the layers `layers` names), which is removed afterwards; the
/// local store is not touched.
func withRemoteImage<T>(_ reference: String, registry: RegistryOptions, layers: (StoredImage) throws -> [Descriptor] = { _ in [] },
                        _ body: (StoredImage, ImageStore) throws -> T) async throws -> T {
    let ref: ImageReference
    do { ref = try ImageReference(parsing: reference) } catch { throw CLIError("\(reference): not an image reference: \(error)") }
    let scratch = cairnHome() + "/remote-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let store = try ImageStore(root: scratch, durable: false)
    return try await withClient(registry) { client in
        let image = try await ImageTransfer(client: client, store: store).pull(ref, layers: false)
        let session = try store.beginWriteSession()
        for layer in try layers(image) where !store.hasBlob(layer.digest) {
            try await client.download(Repository(ref), layer, into: session, progress: nil)
        }
        return try body(image, store)
    }
}
