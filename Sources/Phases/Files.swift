import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// A label value: the value's canonical JSON.
func json<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try CanonicalJSON.encode(value), as: UTF8.self)
}

/// A `<owner>.sbom.<ext>` file in a buildpack's layers directory (owner: a layer name, or
/// `launch`/`build`).
typealias SBOMFile = (owner: String, ext: String, path: String)

/// The SBOM files of a buildpack's layers directory, sorted by name.
func sbomFiles(in directory: String) -> [SBOMFile] {
    ((try? FS.listDirectory(directory)) ?? []).sorted().compactMap { name in
        guard let r = name.firstRange(of: ".sbom.") else { return nil }
        return (String(name[..<r.lowerBound]), String(name[r.upperBound...]), directory + "/" + name)
    }
}

/// An absolute path as a layer entry name (no leading slash).
func layerPath(_ absolute: String) -> String { absolute.split(separator: "/").joined(separator: "/") }

func sha256(file path: String) throws -> String {
    do { return try Digest.sha256(file: path).description } catch {
        throw LifecycleError.io(operation: "read", path: path, reason: "\(error)")
    }
}
