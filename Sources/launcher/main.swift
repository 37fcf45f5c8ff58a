#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The entry point of the launcher built by SwiftPM (tests, development). The shipped launcher is
// built as Embedded Swift by scripts/build-static, without this file (EmbeddedLibc.swift has its
// entry point).
exit(launch(argv: CommandLine.arguments))
