import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The Dockerfiles the detector placed in `<generated>` for one kind, in group order (platform.md,
/// extender: "for each extension in `<group>` in order, if a Dockerfile exists"), each with its
/// build context (image_extension.md, Context Folders) and its extend-config.toml args.
public enum GeneratedDockerfiles {
    /// Since Platform API 0.13: `<generated>/<id>/<kind>.Dockerfile`, extend-config.toml beside it;
    /// before: `<generated>/<kind>/<id>/Dockerfile` with its extend-config.toml. A Dockerfile the
    /// detector set aside (`.ignore`, before a run image switch) is not there and not applied.
    public static func find(generatedDirectory generated: String, group: GroupFile, kind: ExtendKind, appDirectory: String,
                            platformAPI: APIVersion) throws(ExtendError) -> [ExtensionDockerfile] {
        var out: [ExtensionDockerfile] = []
        for element in group.groupExtensions ?? [] {
            let escaped = element.id.escaped
            let perExtension = platformAPI >= APIVersion(0, 13)
            let path = perExtension ? "\(generated)/\(escaped)/\(kind.rawValue).Dockerfile" : "\(generated)/\(kind.rawValue)/\(escaped)/Dockerfile"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let configPath = URL(fileURLWithPath: path).deletingLastPathComponent().path + "/extend-config.toml"
            var args: [String: String] = [:]
            if FileManager.default.fileExists(atPath: configPath) {
                let config: ExtendConfigFile
                do { config = try TOMLFile.read(ExtendConfigFile.self, from: configPath) } catch { throw .syntax("\(error)") }
                for arg in (kind == .build ? config.build : config.run)?.args ?? [] { args[arg.name] = arg.value }
            }
            let contexts = ["\(generated)/\(escaped)/context.\(kind.rawValue)", "\(generated)/\(escaped)/context"]
            let context = contexts.first { FileManager.default.fileExists(atPath: $0) } ?? appDirectory
            out.append(ExtensionDockerfile(extensionID: element.id.description, path: path, contextDirectory: context, args: args))
        }
        return out
    }

    /// A key for the result of applying `dockerfiles` to the image `base`: the same base,
    /// Dockerfiles, args and (for Dockerfiles with COPY or ADD) context contents give the same
    /// key; nil when a Dockerfile uses
    /// `build_id` past its ARG (it asks to be rebuilt every time, image_extension.md).
    public static func cacheKey(base: Digest, _ dockerfiles: [ExtensionDockerfile]) -> String? {
        var hash = DigestingCounter()
        hash.add(Data(base.description.utf8))
        for d in dockerfiles {
            guard let text = try? String(contentsOfFile: d.path, encoding: .utf8) else { return nil }
            let uses = text.components(separatedBy: "build_id").count - 1
            let declares = text.split(separator: "\n").filter { $0.trimmingSpaces.hasPrefix("ARG build_id") }.count
            guard uses <= declares else { return nil }
            hash.add(Data("\u{0}\(d.extensionID)\u{0}\(text)\u{0}".utf8))
            for (k, v) in d.args.sorted(by: { $0.key < $1.key }) { hash.add(Data("\(k)=\(v)\u{0}".utf8)) }
            // The context counts only when the Dockerfile reads it: without COPY or ADD a change to
            // the app (the default context) must not invalidate the extended image.
            let readsContext = (try? Dockerfile(parsing: text, file: d.path))?.instructions.contains { $0.keyword == "COPY" || $0.keyword == "ADD" } ?? true
            if readsContext { contentHash(d.contextDirectory, into: &hash) }
        }
        return hash.finalize().encoded
    }

    /// Paths, modes and bytes of every file below `directory`, in name order.
    static func contentHash(_ directory: String, into hash: inout DigestingCounter) {
        guard let names = try? FileManager.default.subpathsOfDirectory(atPath: directory) else { return }
        for name in names.sorted() {
            let path = directory + "/" + name
            let attributes = (try? FileManager.default.attributesOfItem(atPath: path)) ?? [:]
            let mode = (attributes[.posixPermissions] as? Int) ?? 0
            hash.add(Data("\(name)\u{0}\(mode)\u{0}".utf8))
            if (attributes[.type] as? FileAttributeType) == .typeRegular, let data = FileManager.default.contents(atPath: path) {
                hash.add(data)
            } else if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                hash.add(Data(target.utf8))
            }
        }
    }
}

extension DigestingCounter {
    mutating func add(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }
}
