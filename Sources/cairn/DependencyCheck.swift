import Foundation
import OCI
import Trust

/// `cairn verify --deps`: each buildpack dependency the verified provenance records (uri and
/// sha256) is looked for in the image's layers by the file name its uri ends with. Found, its
/// content must have the recorded sha256; not found (a buildpack usually unpacks what it
/// downloads), it is reported as not present as a file, which is not a failure.
enum DependencyCheck {
    struct Finding {
        var dependency: String
        var status: String
        var failed: Bool
    }

    static func check(_ recorded: [(name: String, uri: String, sha256: String?)], image: StoredImage, store: ImageStore) throws -> [Finding] {
        let wanted = Set(recorded.compactMap { d in d.uri.split(separator: "/").last.map(String.init) })
        var found: [String: [(path: String, sha256: String)]] = [:]
        for layer in image.manifest.layers {
            let reader = try TarReader(layerBlob: store.blobPath(layer.digest), what: "layer \(layer.digest.short)")
            while let header = try reader.next() {
                guard header.type == .regular, let base = header.name.split(separator: "/").last.map(String.init), wanted.contains(base) else { continue }
                var hasher = StreamingSHA256()
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try reader.readContent(into: $0) }
                    if n == 0 { break }
                    buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
                }
                found[base, default: []].append(("/" + header.name.drop { $0 == "/" }, hasher.hex()))
            }
        }
        return recorded.map { d in
            let base = d.uri.split(separator: "/").last.map(String.init) ?? d.uri
            guard let files = found[base], let sha = d.sha256 else {
                return Finding(dependency: d.name, status: "not present as a file (\(base)): nothing to compare", failed: false)
            }
            if let match = files.first(where: { $0.sha256 == sha }) {
                return Finding(dependency: d.name, status: "present at \(match.path), sha256 matches", failed: false)
            }
            return Finding(dependency: d.name, status: "present at \(files[0].path) with sha256 \(files[0].sha256), but the provenance records \(sha)",
                           failed: true)
        }
    }
}
