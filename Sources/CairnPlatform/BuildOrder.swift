import Buildpacks
import Foundation
import OCI
import Processes

extension BuildRunner {
    /// `--buildpack ID[@VERSION]|DIR` and project.toml's group, pre and post: a buildpacks
    /// directory with the builder's buildpacks (links into /cnb/buildpacks) plus the given ones,
    /// and an order: the given group, or else each group of the builder's order, with the pre
    /// buildpacks before and the post buildpacks after it (project-descriptor.md).
    func prepareBuildpacks(_ request: BuildRequest, rootfs: String, work: String) throws {
        let fm = FileManager.default
        let dir = work + "/buildpacks"
        for id in (try? fm.contentsOfDirectory(atPath: rootfs + "/cnb/buildpacks")) ?? [] {
            try fm.createSymbolicLink(atPath: dir + "/" + id, withDestinationPath: "/cnb/buildpacks/" + id)
        }
        let pre = try request.preBuildpacks.map { try addBuildpack($0, rootfs: rootfs, work: work) }
        let post = try request.postBuildpacks.map { try addBuildpack($0, rootfs: rootfs, work: work) }
        var groups: [[GroupReference]]
        if !request.buildpacks.isEmpty {
            groups = [try request.buildpacks.map { try addBuildpack($0, rootfs: rootfs, work: work) }]
        } else {
            let builderOrder = try TOMLFile.read(OrderFile.self, from: rootfs + CNBPath.order)
            if !(builderOrder.orderExtensions ?? []).isEmpty {
                throw PlatformError.invalidArgument("project.toml pre/post groups", reason: "not supported with a builder that has image extensions; list the whole group in [[io.buildpacks.group]]")
            }
            groups = builderOrder.order.map(\.group)
        }
        let order = groups.map { OrderGroup(group: pre + $0 + post) }
        try TOMLFile.write(OrderFile(order: order), to: dir + "/order.toml")
    }

    /// One buildpack reference made available in the buildpacks directory; its group entry.
    func addBuildpack(_ given: String, rootfs: String, work: String) throws -> GroupReference {
        let fm = FileManager.default
        let dir = work + "/buildpacks"
        var spec = given
        if let unpacked = try ClassicBuildpack.unpackIfArchive(spec, into: work + "/classic-archive-" + UUID().uuidString.prefix(8)) {
            spec = unpacked
        }
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: spec, isDirectory: &isDir), isDir.boolValue {
            if ClassicBuildpack.isClassic(spec) {
                let wrapped = work + "/classic-" + UUID().uuidString.prefix(8)
                _ = try ClassicBuildpack.wrap(spec, into: wrapped, log: log)
                spec = wrapped
            }
            let d = try TOMLFile.read(BuildpackDescriptor.self, from: spec + "/buildpack.toml")
            let escaped = d.buildpack.id.escaped
            let target = dir + "/" + escaped
            if (try? fm.destinationOfSymbolicLink(atPath: target)) != nil {
                // The builder has this id too: keep its versions beside the given one.
                try fm.removeItem(atPath: target)
                try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
                for v in (try? fm.contentsOfDirectory(atPath: rootfs + "/cnb/buildpacks/" + escaped)) ?? [] {
                    try fm.createSymbolicLink(atPath: target + "/" + v, withDestinationPath: "/cnb/buildpacks/\(escaped)/\(v)")
                }
            }
            try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: target + "/" + d.buildpack.version)
            try ChildProcess.tool("/bin/cp", ["-a", spec, target + "/" + d.buildpack.version])
            return GroupReference(id: d.buildpack.id, version: d.buildpack.version)
        } else if let id = builderBuildpack(spec, rootfs: rootfs) {
            return id
        } else if Buildpackage.isPackageReference(spec) {
            // A buildpackage: each of its buildpacks unpacked beside the builder's.
            let package = try Buildpackage.open(spec, store: store, scratch: work)
            for m in try package.modules() {
                let unpacked = work + "/unpack-" + UUID().uuidString
                try fm.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
                _ = try LayerExtractor.apply(blobPath: package.store.blobPath(m.layer.digest), to: unpacked, layerName: "\(m.id)@\(m.version)")
                let escaped = try BuildpackID(m.id).escaped
                let target = dir + "/" + escaped
                if (try? fm.destinationOfSymbolicLink(atPath: target)) != nil { try fm.removeItem(atPath: target) }
                try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
                try? fm.removeItem(atPath: target + "/" + m.version)
                try fm.moveItem(atPath: unpacked + "/cnb/buildpacks/" + escaped + "/" + m.version, toPath: target + "/" + m.version)
                try? fm.removeItem(atPath: unpacked)
            }
            return GroupReference(id: try BuildpackID(package.metadata.id), version: package.metadata.version)
        } else {
            throw PlatformError.invalidArgument("--buildpack \(spec)", reason: "not a directory, not a buildpack of the builder, not a buildpackage")
        }
    }

    /// `ID[@VERSION]` of a buildpack the builder has.
    func builderBuildpack(_ spec: String, rootfs: String) -> GroupReference? {
        let parts = spec.split(separator: "@", maxSplits: 1).map(String.init)
        guard let id = try? BuildpackID(parts[0]), FileManager.default.fileExists(atPath: rootfs + "/cnb/buildpacks/" + id.escaped) else { return nil }
        return GroupReference(id: id, version: parts.count > 1 ? parts[1] : nil)
    }
}
