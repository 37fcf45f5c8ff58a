/// Checks the one shape of malformed TOML that toml++ (inside TOMLKit) does not report as a
/// parse error but aborts on: a table header whose key does not start with a bare-key character
/// or a quote (`[.a]`, `[[ =x]]`). toml++ asserts the key's first character in `parse_key`, and
/// built without NDEBUG the assertion ends the process; with NDEBUG it is an optimiser assumption,
/// which is worse. Found by the fuzz tests (Tests/PhasesTests/FuzzTests.swift). This scan knows
/// strings, comments and multi-line arrays well enough to find statement starts; anything else
/// it leaves to toml++.
enum TOMLPrecheck {
    struct Problem: Error {
        var line, column: Int
        var message: String
    }

    static func check(_ text: String) throws(Problem) {
        let b = Array(text.utf8)
        var i = 0, line = 1, lineStart = 0
        var depth = 0
        var statementStart = true
        func isBare(_ c: UInt8) -> Bool {
            (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d
        }
        func at(_ k: Int) -> UInt8? { k < b.count ? b[k] : nil }
        /// Skips a string starting at `i` (a quote); returns false when it does not end.
        func skipString() -> Bool {
            let q = b[i]
            let triple = at(i + 1) == q && at(i + 2) == q
            i += triple ? 3 : 1
            while i < b.count {
                let c = b[i]
                if c == 0x5c && q == 0x22 { i += 2; continue }   // an escape in a basic string
                if c == 0x0a {
                    guard triple else { return false }
                    line += 1
                    lineStart = i + 1
                }
                if c == q && (!triple || (at(i + 1) == q && at(i + 2) == q)) {
                    i += triple ? 3 : 1
                    return true
                }
                i += 1
            }
            return false
        }
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x20, 0x09, 0x0d:
                i += 1
            case 0x0a:
                line += 1
                lineStart = i + 1
                if depth == 0 { statementStart = true }
                i += 1
            case 0x23:   // a comment, to the end of the line
                while i < b.count && b[i] != 0x0a { i += 1 }
            case 0x22, 0x27:
                statementStart = false
                guard skipString() else { return }
            case 0x5b where statementStart && depth == 0:
                // A table header: `[` or `[[`, optional spaces, then a key.
                var k = i + 1
                if at(k) == 0x5b { k += 1 }
                while at(k) == 0x20 || at(k) == 0x09 { k += 1 }
                if let first = at(k), !isBare(first), first != 0x22, first != 0x27, first != 0x5d, first != 0x0a, first != 0x0d {
                    throw Problem(line: line, column: k - lineStart + 1,
                                  message: "a table header's key must start with a letter, digit, '_', '-' or a quote")
                }
                // The rest of the header, up to its closing bracket(s), strings skipped.
                i = k
                while i < b.count && b[i] != 0x5d && b[i] != 0x0a {
                    if b[i] == 0x22 || b[i] == 0x27 { guard skipString() else { return } } else { i += 1 }
                }
                statementStart = false
            case 0x5b, 0x7b:
                depth += 1
                statementStart = false
                i += 1
            case 0x5d, 0x7d:
                depth = max(0, depth - 1)
                i += 1
            default:
                statementStart = false
                i += 1
            }
        }
    }
}
