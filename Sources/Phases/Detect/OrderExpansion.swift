import Buildpacks

/// Order expansion (buildpack.md, Order Resolution): an order's groups with composite buildpacks
/// expanded depth first, optional composites falling back, system buildpacks added, modules
/// skipped for the execution environment, and the extensions order prepended.
extension Detector {
    enum Ref {
        case module(GroupReference, ModuleDescriptor.Kind)
        /// The extensions order, prepended to every group as one optional element.
        case extensions([OrderGroup])
    }

    func expand(order: OrderFile, system: SystemFile?) throws -> [[Candidate]] {
        var out: [[Candidate]] = []
        for g in order.order {
            var refs = g.group
            if let system {
                // platform.md, detector: pre/post system buildpacks, unless the group has that ID.
                let ids = Set(refs.map(\.id))
                refs = system.pre.filter { !ids.contains($0.id) } + refs + system.post.filter { !ids.contains($0.id) }
            }
            var all: [Ref] = refs.map { .module($0, .buildpack) }
            if let ext = order.orderExtensions, !ext.isEmpty, inputs.usesExtensions { all.insert(.extensions(ext), at: 0) }
            out += try expandGroup(prefix: [], rest: all[...])
        }
        return out
    }

    func skipsForExecEnv(_ ref: GroupReference, _ module: ModuleDescriptor) -> Bool {
        guard inputs.execEnv != ExecEnv.production else { return false }
        if let envs = ref.execEnv, !envs.contains(inputs.execEnv) && !envs.contains(ExecEnv.any) { return true }
        return !module.supports(execEnv: inputs.execEnv)
    }

    func expandGroup(prefix: [Candidate], rest: ArraySlice<Ref>) throws -> [[Candidate]] {
        guard let first = rest.first else { return prefix.isEmpty ? [] : [prefix] }
        let tail = rest.dropFirst()
        switch first {
        case .extensions(let groups):
            var out: [[Candidate]] = []
            for g in groups {
                out += try expandGroup(prefix: prefix, rest: (g.group.map { Ref.module($0, .extension) } + tail)[...])
            }
            return out + (try expandGroup(prefix: prefix, rest: tail))
        case .module(let ref, let kind):
            let module = try store.lookup(ref.id, version: ref.version, kind: kind)
            let skipped = skipsForExecEnv(ref, module)
            if skipped { log.debug("skip: \(module.key) does not support execution environment \(inputs.execEnv)") }
            if skipped || prefix.contains(where: { $0.module.id == module.id }) {
                return try expandGroup(prefix: prefix, rest: tail)
            }
            if let order = module.order {
                var out: [[Candidate]] = []
                for g in order {
                    out += try expandGroup(prefix: prefix, rest: (g.group.map { Ref.module($0, .buildpack) } + tail)[...])
                }
                if ref.optional { out += try expandGroup(prefix: prefix, rest: tail) }
                return out
            }
            return try expandGroup(prefix: prefix + [Candidate(module: module, optional: ref.optional || kind == .extension)], rest: tail)
        }
    }
}
