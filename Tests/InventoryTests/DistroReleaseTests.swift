import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Distribution releases (issue 39): an Ubuntu run image's packages answer Ubuntu's advisories
/// for its release (OSV's `Ubuntu:22.04:LTS`), never Debian's; a run image whose release is not
/// known is `unknown` for a release's advisory, not clean; both databases.
@Test(arguments: backends) func ubuntuAdvisoriesAndUnknownReleases(backend: String) throws {
    #expect(Ecosystem.parse("Ubuntu:Pro:18.04:LTS") == (.ubuntu, "18.04") && Ecosystem.parse("Ubuntu:22.04:LTS") == (.ubuntu, "22.04"))
    #expect(PackageURL("pkg:deb/ubuntu/libfoo1@1.0-1ubuntu1?arch=amd64").map { $0.osv == (.ubuntu, "libfoo1") } == true)
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    func run(_ name: String, distro: String, version: String, _ ecosystem: Ecosystem, _ libfoo: String) -> RunImageRecord {
        var r = RunImageRecord(identity: "io.example." + name, name: "example/" + name, topLayer: "sha256:" + name, layers: "sha256:" + name)
        r.distro = distro
        r.distroVersion = version
        r.packages = [PackageRecord(ecosystem: ecosystem, name: "libfoo1", version: libfoo, sourceName: "foo", sourceVersion: libfoo)]
        return r
    }
    let jammy = run("jammy", distro: "ubuntu", version: "22.04", .ubuntu, "1.0-1ubuntu1")
    let unlabelled = run("plain", distro: "", version: "", .debian, "1.0-1")
    let r = try f.inventory.beginRun(source: "test")
    for (image, base) in [("u", jammy), ("x", unlabelled)] {
        try f.inventory.add(runImage: base, run: r)
        try f.inventory.add(InventoryFixture.app("sha256:" + image, flask: "2.3.3", bp: "1.0.0", run: base), location: "store", names: [image], run: r)
    }
    let usn = OSVRecord(id: "UBUNTU-CVE-2099-0001", aliases: ["CVE-2099-0001"], affected: [
        .init(package: .init(ecosystem: "Ubuntu:22.04:LTS", name: "foo"),
              ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "1.0-1ubuntu2")])])])
    try f.inventory.importAdvisories([usn, InventoryFixture.fooAdvisory])
    let found = try f.inventory.vulnerabilities().map { "\($0.image) \($0.advisory ?? "-") \($0.status ?? "affected") \($0.fixed ?? "")" }
    #expect(found == ["u UBUNTU-CVE-2099-0001 affected 1.0-1ubuntu2", "x DSA-9999-1 unknown "], "\(found)")
    let x = try f.inventory.vulnerabilities().first { $0.image == "x" }
    #expect(x?.reason?.contains("distribution release is not known") == true, "\(x?.reason ?? "")")
}
