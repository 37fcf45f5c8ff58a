import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What every phase does before reading any input (platform.md, Platform API Compatibility):
/// `CNB_PLATFORM_API` unset, unsupported, or not a version. The exit code is compared.
let platformAPIValues: [(name: String, value: String?)] = [("unset", nil), ("unsupported-0.3", "0.3"), ("not-a-version", "x.y")]

let entryCases: [DifferentialCase] = Lifecycles.phases.flatMap { phase in
    platformAPIValues.map { api in
        DifferentialCase(id: "entry/\(phase)-platform-api-\(api.name)", setup: { r in
            try r.standardDirectories()
        }, execute: { r, lifecycle in
            var values: [String: String] = [:]
            values["CNB_PLATFORM_API"] = api.value
            let result = try r.runAsUser([lifecycle.phase(phase)], environment: DifferentialRunner.environment(r, values))
            var o = Observation()
            o.exit(result.status)
            o.log = result.stdout + result.stderr
            return o
        })
    }
}

@Suite(.enabled(if: geteuid() == 0, "runs both lifecycles as uid 1000 with setpriv (CI runs as root)")) struct DifferentialEntry {
    @Test func everyPhaseChecksThePlatformAPIFirstAsTheReferenceDoes() throws {
        try DifferentialRunner.check("entry", entryCases)
    }
}
