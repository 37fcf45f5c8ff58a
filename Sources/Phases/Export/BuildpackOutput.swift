import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// A buildpack's `<layers>/<bp>/` after the build, its layer metadata read once.
struct BuildpackOutput: Sendable {
    let element: GroupElement
    let directory: String
    /// Every `<layer>.toml` but the buildpack's own files, by layer name (byte order).
    let layers: [(name: String, file: LayerMetadataFile)]

    func path(_ name: String) -> String { directory + "/" + name }

    var sbomFiles: [SBOMFile] { Phases.sbomFiles(in: directory) }

    /// The outputs of the group's buildpacks, in group order.
    static func read(_ group: GroupFile, layersDirectory: String) throws(LifecycleError) -> [BuildpackOutput] {
        var outputs: [BuildpackOutput] = []
        for bp in group.group {
            let dir = layersDirectory + "/" + bp.id.escaped
            let names = ((try? FS.listDirectory(dir)) ?? [])
                .filter { $0.hasSuffix(".toml") }
                .map { String($0.dropLast(5)) }
                .filter { !BuildPhase.reservedNames.contains($0) }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            var layers: [(name: String, file: LayerMetadataFile)] = []
            for name in names {
                // A layer is a directory (buildpack.md); a link (to `/`, say) would have the
                // exporter and the cache walk wherever it points.
                var st = stat()
                if lstat(dir + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + name)) ?? "?"
                    throw .buildpackOutputInvalid(id: bp.id.description,
                                                  detail: "layer \(name) is a symbolic link (to \(target)); a layer must be a directory")
                }
                layers.append((name, try readFile(LayerMetadataFile.self, dir + "/" + name + ".toml")))
            }
            outputs.append(BuildpackOutput(element: bp, directory: dir, layers: layers))
        }
        return outputs
    }
}
