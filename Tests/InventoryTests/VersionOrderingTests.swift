import Testing
@testable import Inventory

/// Each ordering against its ecosystem's own documented examples: `a < b` for each pair.
private func ascending(_ ecosystem: Ecosystem, _ versions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    for (a, b) in zip(versions, versions.dropFirst()) {
        #expect(ecosystem.compare(a, b) < 0, "\(ecosystem) \(a) < \(b)", sourceLocation: sourceLocation)
        #expect(ecosystem.compare(b, a) > 0, "\(ecosystem) \(b) > \(a)", sourceLocation: sourceLocation)
    }
}

private func equal(_ ecosystem: Ecosystem, _ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(ecosystem.compare(a, b) == 0, "\(ecosystem) \(a) == \(b)", sourceLocation: sourceLocation)
}

@Test func dpkgOrderingFollowsDebVersion() {
    // deb-version(7): the epoch first, `~` before anything (even the end), letters before other
    // characters, digit runs as numbers, a missing revision as the lowest.
    #expect(Ecosystem.debian.compare("1:1.0", "2.0") > 0)
    ascending(.debian, ["1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0-1", "1.0-1+deb12u1", "1.0-2", "1.0a", "1.0+dfsg", "1.0.1"])
    ascending(.debian, ["2.4-1", "2.30-1", "7.88.1-10+deb12u5", "7.88.1-10+deb12u12"])
    ascending(.debian, ["1.36.1-9", "1:1.36.1-9", "2:0.1"])
    equal(.debian, "1.0", "1.0-0")
    equal(.debian, "0:1.0", "1.0")
    equal(.debian, "1.001", "1.1")
}

@Test func pep440OrderingFollowsThePEP() {
    ascending(.pypi, ["1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local.1", "1.0.post1.dev1", "1.0.post1", "1.1.dev0", "1.1"])
    ascending(.pypi, ["2.2.0", "2.2.10", "2.3.2", "2.3.3", "10.0", "1!0.1"])
    equal(.pypi, "1.0", "1.0.0")
    equal(.pypi, "1.0RC1", "1.0rc1")
    equal(.pypi, "1.0alpha1", "1.0a1")
    equal(.pypi, "1.0-beta.2", "1.0b2")
    equal(.pypi, "1.0c1", "1.0rc1")
    equal(.pypi, "1.0-1", "1.0.post1")
    equal(.pypi, "1.0-r1", "1.0.post1")
    equal(.pypi, "v1.0", "1.0")
    equal(.pypi, "1.0.DEV", "1.0.dev0")
    // Local versions: numbers above text, longer above a prefix.
    ascending(.pypi, ["1.0+abc", "1.0+1", "1.0+1.abc", "1.0+1.1"])
    #expect(Ecosystem.pypi.normalize(name: "Flask_SQLAlchemy..x") == "flask-sqlalchemy-x")
}

@Test func semverPrecedenceFollowsTheSpec() {
    // semver.org §11's example, then Go's `v` prefix and build metadata.
    ascending(.npm, ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"])
    equal(.go, "v1.2.3", "1.2.3")
    equal(.npm, "1.0.0+build.5", "1.0.0")
    ascending(.go, ["v0.0.0-20210101000000-abcdef123456", "v0.1.0", "v1.9.9", "v1.10.0"])
}

@Test func mavenOrderingFollowsComparableVersion() {
    ascending(.maven, ["1.0-alpha-1", "1.0-alpha-2", "1.0-beta-1", "1.0-milestone-1", "1.0-rc-1", "1.0-SNAPSHOT", "1.0", "1.0-sp-1", "1.0.1", "1.1", "1.10"])
    equal(.maven, "1.0", "1.0.0")
    equal(.maven, "1", "1-ga")
    equal(.maven, "1.0", "1.0-final")
    equal(.maven, "2.0.0.RELEASE", "2.0.0")
    equal(.maven, "1.0-cr1", "1.0-rc1")
    equal(.maven, "1.0-alpha1", "1.0-a1")
    // An unknown qualifier sorts after the known ones, and below a further number.
    ascending(.maven, ["1.0", "1.0-sp", "1.0-foo", "1.0-zzz", "1.0.1"])
}

@Test func osvRangesAreEvaluatedEventByEvent() throws {
    func ranges(_ events: [[String: String]], type: String = "ECOSYSTEM", versions: [String] = []) -> AffectedRanges {
        AffectedRanges(ranges: [OSVRecord.Range(type: type, events: events.map {
            OSVRecord.Event(introduced: $0["introduced"], fixed: $0["fixed"], lastAffected: $0["last_affected"], limit: $0["limit"])
        })], versions: versions)
    }
    let flask = ranges([["introduced": "0"], ["fixed": "2.3.2"]])
    #expect(flask.evaluate("2.2.0", in: .pypi) == (true, "2.3.2"))
    #expect(flask.evaluate("2.3.2", in: .pypi).affected == false)
    #expect(flask.evaluate("2.3.3", in: .pypi).affected == false)
    #expect(flask.evaluate("2.3.2rc1", in: .pypi).affected, "a pre-release of the fix is before it")
    // Two intervals; the fix reported is the one above the version.
    let two = ranges([["introduced": "1.0"], ["fixed": "1.2"], ["introduced": "2.0"], ["fixed": "2.1"]])
    #expect(two.evaluate("0.9", in: .npm).affected == false)
    #expect(two.evaluate("1.1.0", in: .npm) == (true, "1.2"))
    #expect(two.evaluate("1.5.0", in: .npm).affected == false)
    #expect(two.evaluate("2.0.5", in: .npm) == (true, "2.1"))
    let last = ranges([["introduced": "1.0"], ["last_affected": "1.5"]])
    #expect(last.evaluate("1.5", in: .maven) == (true, nil))
    #expect(last.evaluate("1.5.1", in: .maven).affected == false)
    let limited = ranges([["introduced": "0"], ["limit": "3.0"]])
    #expect(limited.evaluate("2.9", in: .pypi).affected && !limited.evaluate("3.0", in: .pypi).affected)
    let listed = ranges([], versions: ["1.4.2"])
    #expect(listed.evaluate("1.4.2", in: .npm).affected && !listed.evaluate("1.4.3", in: .npm).affected)
    // dpkg ordering for Debian: the epoch counts.
    let deb = ranges([["introduced": "0"], ["fixed": "1:2.0-1"]])
    #expect(deb.evaluate("3.0-1", in: .debian) == (true, "1:2.0-1"))
    // SEMVER ranges use semver whatever the ecosystem.
    let sem = ranges([["introduced": "0"], ["fixed": "1.10.0"]], type: "SEMVER")
    #expect(sem.evaluate("1.9.0", in: .generic).affected)
    // GIT ranges name commits: not evaluated.
    #expect(ranges([["introduced": "0"]], type: "GIT").evaluate("1.0", in: .npm).affected == false)
}

@Test func cvssBaseScoresMatchTheCalculator() {
    // FIRST's calculator: these vectors score 9.8, 6.1, 10.0 and 5.3.
    #expect(CVSS3.baseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8)
    #expect(CVSS3.baseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1)
    #expect(CVSS3.baseScore("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0)
    #expect(CVSS3.baseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N") == 5.3)
    #expect(CVSS3.baseScore("CVSS:3.1/AV:X") == nil)
    #expect(CVSS3.level(9.8) == "CRITICAL" && CVSS3.level(6.1) == "MEDIUM")
}

@Test func packageURLsMapToOSVNames() {
    func osv(_ s: String) -> String { PackageURL(s).map { "\($0.osv.ecosystem) \($0.osv.name)" } ?? "nil" }
    #expect(osv("pkg:pypi/Flask@2.2.0") == "pypi flask")
    #expect(PackageURL("pkg:pypi/Flask@2.2.0")?.version == "2.2.0")
    #expect(osv("pkg:npm/%40babel/core@7.0.0") == "npm @babel/core")
    #expect(osv("pkg:golang/golang.org/x/net@v0.1.0") == "go golang.org/x/net")
    #expect(osv("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1") == "maven org.apache.logging.log4j:log4j-core")
    #expect(osv("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12") == "debian openssl")
    #expect(PackageURL("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64")?.version == "3.0.11-1~deb12u2")
    #expect(osv("pkg:generic/tinyruntime@1.0") == "generic tinyruntime")
    #expect(PackageURL("flask") == nil)
}

@Test func versionRangesUseTheEcosystemOrdering() throws {
    let r = try VersionRange(parsing: ">=1.0,<2.3.2")
    #expect(r.contains("2.2.0", in: .pypi) && !r.contains("2.3.2", in: .pypi) && !r.contains("0.9", in: .pypi))
    #expect(try VersionRange(parsing: "2.2.0").contains("2.2", in: .pypi))
    #expect(try VersionRange(parsing: "<1:0").contains("5.0", in: .debian))
    #expect(throws: InventoryError.self) { try VersionRange(parsing: "<") }
    #expect(throws: InventoryError.self) { try VersionRange(parsing: "") }
}
