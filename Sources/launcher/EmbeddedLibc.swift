#if hasFeature(Embedded)
import CLibc

// What Glibc's Swift overlay gives the launcher and the C headers alone do not, for the
// Embedded Swift build of scripts/build-static.
var errno: Int32 { cairn_errno() }

// Embedded Swift has no CommandLine: the C entry point is declared here, and the build leaves
// out main.swift (-parse-as-library).
@_cdecl("main")
func embeddedMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    launch(argv: (0..<Int(argc)).map { String(cString: argv[$0]!) })
}
#endif
