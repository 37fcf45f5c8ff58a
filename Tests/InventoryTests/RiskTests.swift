import Foundation
import Testing
import TestSupport
@testable import Inventory

/// `vulns --sort risk` (issue 39): KEV and EPSS read as published (CISA's JSON catalog, FIRST's
/// CSV with its comment line), matched through advisory aliases, on both databases; an
/// advisory in KEV ranks first even when less severe; a new snapshot replaces the old one.
@Test(arguments: backends) func riskRanksKnownExploitedFirstThenSeverityThenEPSS(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    let kev = try ExploitData.readKEV(Data("""
        {"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.12.01", "count": 2,
         "vulnerabilities": [{"cveID": "CVE-2099-0001", "vendorProject": "Debian", "product": "foo", "dateAdded": "2026-11-30",
                              "knownRansomwareCampaignUse": "Known", "cwes": []},
                             {"cveID": "CVE-2000-0000", "dateAdded": "2020-01-01"}]}
        """.utf8), path: "kev.json")
    let epss = try ExploitData.readEPSS(Data("""
        #model_version:v2025.03.14,score_date:2026-12-01T00:00:00+0000
        cve,epss,percentile
        CVE-2023-30861,0.41000,0.97000
        CVE-2099-0001,0.00100,0.10000
        """.utf8), path: "epss.csv")
    #expect(kev.map(\.cve) == ["CVE-2099-0001", "CVE-2000-0000"] && kev[0].ransomware == "Known")
    #expect(epss.count == 2 && epss[0].score == 0.41)
    #expect(try f.inventory.importExploitData(kev: kev, epss: epss) == (2, 2))

    let ranked = try f.inventory.vulnerabilities(risk: true).filter { $0.status == nil }.sortedByRisk()
    #expect(ranked.map { $0.advisory ?? "" } == ["DSA-9999-1", "GHSA-m2qf-hxjv-5gpq"], "KEV first, though it has no severity")
    #expect(ranked.first?.kev == "2026-11-30" && ranked.first?.epss == "0.00100")
    #expect(ranked.last?.kev == nil && ranked.last?.epss == "0.41000")
    #expect(try f.inventory.vulnerabilities().allSatisfy { $0.kev == nil && $0.epss == nil }, "only asked for")

    // A new KEV snapshot without the entry: severity decides again.
    try f.inventory.importExploitData(kev: [], epss: nil)
    let again = try f.inventory.vulnerabilities(risk: true).filter { $0.status == nil }.sortedByRisk()
    #expect(again.map { $0.advisory ?? "" } == ["GHSA-m2qf-hxjv-5gpq", "DSA-9999-1"])
    #expect(again.first?.epss == "0.41000", "EPSS kept: only --kev was given")
}

/// Bad exploit files name the file and line.
@Test func exploitFilesThatAreNotWhatTheySayAreRefused() {
    #expect(throws: InventoryError.self) { try ExploitData.readKEV(Data("name,date\nx,y\n".utf8), path: "kev.csv") }
    do {
        _ = try ExploitData.readEPSS(Data("#model\ncve,epss,percentile\nCVE-1,0.1,0.2\nCVE-2,high,0.3\n".utf8), path: "epss.csv")
        Issue.record("accepted a score that is not a number")
    } catch {
        #expect("\(error)".contains("epss.csv: line 4"), "\(error)")
    }
    #expect(ExploitData.csvRows("a,\"b \"\"c\"\", d\"\r\ne,f\n") == [["a", "b \"c\", d"], ["e", "f"]])
    #expect(ExploitData.csvRows("\u{FEFF}cveID,dateAdded\n") == [["cveID", "dateAdded"]])
}
