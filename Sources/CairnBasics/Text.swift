// String operations the lifecycle's modules need that FoundationEssentials lacks
// (`trimmingCharacters(in:)`, `String(format:)`): small and exact.

extension StringProtocol {
    /// Without leading and trailing whitespace (spaces, tabs, newlines).
    public var trimmed: String { trimming { $0.isWhitespace } }

    /// Without leading and trailing characters for which `strip` holds.
    public func trimming(_ strip: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !strip($0) }), let last = lastIndex(where: { !strip($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// `n` in upper-case hexadecimal, zero-padded to `width` digits.
public func hex(_ n: UInt32, width: Int) -> String {
    let digits = String(n, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// The directory part of a path, as NSString's `deletingLastPathComponent`: `/a/b/` → `/a`,
/// `/a` → `/`, `a` → ``.
public func parentDirectory(of path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "" }
    if slash == p.startIndex { return "/" }
    var parent = p[..<slash]
    while parent.count > 1 && parent.hasSuffix("/") { parent = parent.dropLast() }
    return String(parent)
}

/// Whether `needle` occurs in `haystack` (bytes, no decoding): a cheap look before parsing a
/// whole file or manifest for what it may name.
public func bytes(_ haystack: UnsafeRawBufferPointer, contain needle: some Collection<UInt8>) -> Bool {
    let needle = Array(needle)
    guard let first = needle.first, haystack.count >= needle.count else { return needle.isEmpty }
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == first, needle.indices.allSatisfy({ haystack[i + $0] == needle[$0] }) { return true }
        i += 1
    }
    return false
}
