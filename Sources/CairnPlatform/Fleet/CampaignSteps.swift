import Buildpacks
import Foundation
import Inventory
import OCI
import Phases
import Synchronization

extension Campaign {
    /// Fixes one image: rebase and/or patch the planned digest (`name@old`, never whatever the tag
    /// names now) and move the tag; journalled before (`begin`) and after (`tagged`).
    func fix(_ step: FixPlan.Step, state: CampaignState, wave: Int) async -> Outcome {
        let target = Self.target(of: step, suffix: plan.tagSuffix)
        do {
            let location = try sites.location(for: step)
            let current = try await sites.currentDigest(target, at: step.location)?.description
            let known = state.images[target]
            // Moved by a run killed before its check: the wave's check follows.
            if let new = known?.new, known?.rolledBack == false, current == new {
                // A run killed after the tag moved may not have carried the build SBOM yet.
                if let moved = Digest(new) { try await carryBuildSBOM(step, target: target, to: moved, at: location) }
                return outcome(step, status: "fixed", new: new)
            }
            if let current, current != step.digest {
                return try await adoptOrRefuse(step, target: target, current: current, wave: wave)
            }
            try pinOldManifest(step, at: location)
            if sites.isRegistry(step.location) { try? CampaignSites.share(step.image, digest: step.digest, from: sites.cache, to: sites.work) }
            try journal.append(event("begin", step, wave: wave))
            let patches = step.patches.isEmpty ? nil
                : LayerPatchFile(patches: step.patches.map { LayerPatchFile.Patch(buildpack: $0.buildpack, layer: $0.layer, patchImage: $0.patchImage) })
            var inputs = RebaserInputs(images: [target], previousImage: try ImageReference(parsing: step.image).familiarName + "@" + step.digest,
                                       runImage: try await pinnedRunImage(of: step), force: settings.force, reportPath: nil, location: location,
                                       platformAPI: SupportedAPIs.defaultPlatform, layerPatches: patches)
            inputs.keepRunImage = step.runImage == nil
            let started = Date()
            let result = try await Rebaser(inputs: inputs, log: Logger(level: .warn)).run()
            try await carryBuildSBOM(step, target: target, to: result.image.digest, at: location)
            if sites.isRegistry(step.location) {
                try? CampaignSites.share(target, digest: result.image.digest.description, from: sites.work, to: sites.cache)
            }
            if let sign = hooks.sign, let old = Digest(step.digest) { try await sign(result, target, old, started, location) }
            var tagged = event("tagged", step, wave: wave)
            tagged.new = result.image.digest.description
            tagged.signed = hooks.sign == nil ? nil : true
            try journal.append(tagged)
            return outcome(step, status: "fixed", new: result.image.digest.description)
        } catch {
            let detail = "\(error)"
            var failed = event("failed", step, wave: wave)
            failed.detail = detail
            try? journal.append(failed)
            return outcome(step, status: "failed", detail: detail)
        }
    }

    /// The build-time SBOM of the step's old image goes with its fix, when the plan says it has one.
    func carryBuildSBOM(_ step: FixPlan.Step, target: String, to new: Digest, at location: ImageLocation) async throws {
        guard step.buildSBOM == true, let old = Digest(step.digest) else { return }
        try await location.carryBuildSBOM(image: target, from: old, to: new)
    }

    /// In a store, the manifest a step moves a name from stays while the campaign's journal
    /// does (`cairn prune` keeps it): rollback puts it back. A registry keeps it by digest anyway.
    func pinOldManifest(_ step: FixPlan.Step, at location: ImageLocation) throws {
        guard case .store(let store) = location, let old = Digest(step.digest),
              let entry = try store.images().first(where: { $0.descriptor.digest == old }) else { return }
        try store.beginWriteSession().pin(entry.descriptor, holder: journal.directory)
    }

    /// The tag no longer names the planned digest: when it names the plan's fix of it (a killed
    /// run moved it before journalling), that is recorded and not redone; else it is left alone.
    func adoptOrRefuse(_ step: FixPlan.Step, target: String, current: String, wave: Int) async throws -> Outcome {
        let old = try await sites.image(step.image, digest: step.digest, step: step)
        let now = try await sites.image(target, digest: current, step: step)
        let problems = CampaignCheck.problems(old: old, new: now, step: step, runImage: try await runImage(of: step))
        guard problems.isEmpty else {
            throw CampaignError("\(target) names \(Digest(current)?.short ?? current) since the plan, which is not the plan's fix of \(Digest(step.digest)?.short ?? step.digest) (\(problems.joined(separator: "; "))): left alone")
        }
        var tagged = event("tagged", step, wave: wave)
        tagged.new = current
        tagged.detail = "adopted"
        try journal.append(tagged)
        return outcome(step, status: "adopted", new: current)
    }

    /// After the wave's re-index: the tag names the new digest, its manifest and config are the
    /// plan's fix of the old image, the inventory has it, and none of the step's advisories is
    /// found on it. An in-place image that fails goes back to its old digest.
    func verify(_ step: FixPlan.Step, _ o: Outcome, findings: [String: [String]]) async -> Outcome {
        guard let new = o.new else { return o }
        var problems: [String] = []
        var current: String?
        do {
            current = try await sites.currentDigest(o.target, at: step.location)?.description
            if current != new {
                problems.append("the tag names \(current ?? "nothing"), not \(new)")
            } else {
                let old = try await sites.image(step.image, digest: step.digest, step: step)
                let now = try await sites.image(o.target, digest: new, step: step)
                problems += CampaignCheck.problems(old: old, new: now, step: step, runImage: try await runImage(of: step))
            }
            let indexed = try inventory.indexedDigest(location: step.location, name: o.target)
            if indexed != new {
                problems.append("after re-indexing the inventory has \(indexed ?? "no image") for it, not \(new)")
            } else if let left = findings[step.location + "\0" + o.target] {
                problems.append("still affected: \(left.joined(separator: ", "))")
            }
        } catch {
            problems.append("cannot check it: \(error)")
        }
        if problems.isEmpty {
            try? journal.append(event("verified", step, new: new))
            return o
        }
        var result = o
        result.status = "failed"
        result.detail = "check failed: " + problems.joined(separator: "; ")
        var failed = event("failed", step, new: new)
        failed.detail = result.detail
        try? journal.append(failed)
        // Never worse than before: an in-place tag goes back to the planned digest.
        if o.target == step.image && current == new {
            do {
                try await sites.retag(o.target, to: step.digest, at: step.location)
                try journal.append(event("rolled-back", step, new: new))
                result.status = "rolled-back"
            } catch {
                result.detail = (result.detail ?? "") + "; putting the old digest back failed: \(error)"
            }
        }
        return result
    }

    /// The step's run image (manifest and config), read once per campaign.
    func runImage(of step: FixPlan.Step) async throws -> StoredImage? {
        guard let name = step.runImage else { return nil }
        let key = step.location + "\0" + name
        if let known = runImages.withLock({ $0[key] }) { return known }
        guard let found = try await sites.location(for: step).find(name, layers: false) else { return nil }
        runImages.withLock { $0[key] = found.image }
        return found.image
    }

    /// In a registry, the step's run image as the digest its tag named when this campaign first
    /// read it: every rebase of the run puts its images on the same run image, and each reads it
    /// from the work store instead of asking the registry for the tag again (two requests per
    /// image of about twelve). The rebaser takes a digest reference into the app's own run image
    /// repository as a pinned version of it, so the images' metadata still names the tag.
    func pinnedRunImage(of step: FixPlan.Step) async throws -> String? {
        guard let name = step.runImage, sites.isRegistry(step.location), let image = try await runImage(of: step),
              let ref = try? ImageReference(parsing: name), ref.digest == nil else { return step.runImage }
        return ref.familiarName + "@" + image.digest.description
    }

    func event(_ kind: String, _ step: FixPlan.Step, wave: Int? = nil, new: String? = nil) -> CampaignEvent {
        var e = CampaignEvent(kind, image: Self.target(of: step, suffix: plan.tagSuffix), location: step.location, old: step.digest, new: new)
        e.action = step.action
        e.advisories = step.advisories
        e.runImage = step.runImage
        e.patchImages = step.patches.isEmpty ? nil : step.patches.map(\.patchImage)
        e.wave = wave
        return e
    }
}
