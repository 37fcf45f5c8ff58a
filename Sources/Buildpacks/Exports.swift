// The constants, API versions and env-file rules live in the Foundation-free CNBCore, shared
// with the launcher; every user of the data model sees them through this module.
@_exported import CNBCore
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// An error as one readable phrase: a file system error as its system message (what Foundation's
/// `localizedDescription` gave; FoundationEssentials has no localized texts), else its description.
public func errorText(_ error: any Error) -> String {
    if let cocoa = error as? CocoaError, let posix = cocoa.underlying as? POSIXError {
        return String(cString: strerror(posix.code.rawValue))
    }
    return "\(error)"
}
