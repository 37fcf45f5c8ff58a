import Buildpacks
import Foundation
import Inventory
import OCI
import Phases

/// Whether an image is the fix a plan step asked for, read from manifests and configs alone:
/// the new image is the old one with its run image layers replaced by the plan's run image
/// (when the step rebases) and only the planned buildpack layers replaced (when it patches);
/// every other layer the same, in the same order. A campaign checks this after each move, and
/// on resuming it tells a tag moved by a killed run of its own (adopted, not redone) from a
/// tag someone else moved (left alone).
public enum CampaignCheck {
    /// The problems; empty when `new` is the step's fix of `old`.
    public static func problems(old: StoredImage, new: StoredImage, step: FixPlan.Step, runImage: StoredImage?) -> [String] {
        var problems: [String] = []
        guard let oldMeta = (try? old.lifecycleMetadata()) ?? nil, let newMeta = (try? new.lifecycleMetadata()) ?? nil else {
            return ["the lifecycle metadata label of the old or new image cannot be read"]
        }
        guard let oldTop = runTop(old, oldMeta), let newTop = runTop(new, newMeta) else {
            return ["runImage.topLayer of the old or new image is not one of its layers"]
        }
        let oldIDs = old.config.rootfs.diffIDs.map(\.description), newIDs = new.config.rootfs.diffIDs.map(\.description)
        let (oldRun, newRun) = (Array(oldIDs[...oldTop]), Array(newIDs[...newTop]))
        if step.runImage != nil {
            if let runImage {
                let want = runImage.config.rootfs.diffIDs.map(\.description)
                if newRun != want { problems.append("its run image layers are not those of \(step.runImage ?? "?") (\(runImage.digest.short))") }
            } else {
                problems.append("the run image \(step.runImage ?? "?") cannot be read")
            }
        } else if newRun != oldRun {
            problems.append("its run image layers changed, the plan did not rebase it")
        }
        let (oldApp, newApp) = (Array(oldIDs[(oldTop + 1)...]), Array(newIDs[(newTop + 1)...]))
        guard oldApp.count == newApp.count else {
            return problems + ["it has \(newApp.count) layers above the run image, the old image \(oldApp.count)"]
        }
        // The layers the plan patches, as the new metadata names them, must have changed; no other.
        var patched: Set<String> = []
        for p in step.patches {
            let before = layerSHA(oldMeta, buildpack: p.buildpack, layer: p.layer)
            let after = layerSHA(newMeta, buildpack: p.buildpack, layer: p.layer)
            guard let after, after != before else {
                problems.append("\(p.buildpack)'s \(p.layer) layer was not replaced")
                continue
            }
            patched.insert(after)
        }
        // A patch brings its layer's SBOM documents: the SBOM layer changes with it.
        if !step.patches.isEmpty, let sbom = newMeta.sbom?.sha { patched.insert(sbom) }
        for (a, b) in zip(oldApp, newApp) where a != b && !patched.contains(b) {
            problems.append("layer \(String(b.prefix(19))) replaces \(String(a.prefix(19))) though the plan did not patch it")
        }
        return problems
    }

    /// The index of the run image's top layer among the image's layers.
    static func runTop(_ image: StoredImage, _ metadata: LifecycleMetadataLabel) -> Int? {
        guard let top = metadata.runImage?.topLayer, let digest = Digest(top) else { return nil }
        return image.layer(diffID: digest)?.index
    }

    static func layerSHA(_ metadata: LifecycleMetadataLabel, buildpack: String, layer: String) -> String? {
        metadata.buildpacks.first { $0.key == buildpack }?.layers[layer]?.sha
    }
}
