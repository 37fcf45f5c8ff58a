import CairnPlatform
import Foundation
import OCI
import Testing
import TestSupport

/// A run image without distribution labels: its release is read from the os-release its layers
/// leave (etc/os-release over usr/lib/os-release, a later layer over an earlier one).
@Test func runImageReleaseFromOSRelease() throws {
    let tmp = TempDir()
    let store = try ImageStore(root: tmp.sub("store"))
    func layer(_ files: [String: String]) throws -> Descriptor {
        let dir = tmp.sub("layer-\(UUID().uuidString)")
        for (path, text) in files {
            try FileManager.default.createDirectory(atPath: dir + "/" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeFile(dir + "/" + path, text)
        }
        return try store.beginWriteSession().writeLayer(directory: dir, options: LayerWriteOptions()).descriptor
    }
    let base = try layer(["usr/lib/os-release": "ID=debian\nVERSION_ID=\"12\"\n"])
    let upgraded = try layer(["etc/os-release": "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n", "usr/lib/os-release": "ID=other\n"])
    var reader = DpkgStatusReader(store: store)
    #expect(try reader.osRelease(in: [base]).map { "\($0.id) \($0.versionID)" } == "debian 12")
    #expect(try reader.osRelease(in: [base, upgraded]).map { "\($0.id) \($0.versionID)" } == "ubuntu 22.04")
    #expect(try reader.osRelease(in: [try layer(["etc/hostname": "x\n"])]) == nil)
}
