import Buildpacks
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The word rules of Dockerfile instruction arguments (Dockerfile reference, "Environment
/// replacement"): `$name`, `${name}`, `${name:-word}`, `${name:+word}`, `\$` for a literal
/// dollar; quotes group words in `KEY=VALUE` lists; `["a", "b"]` is the exec (JSON) form.
enum Words {
    /// `text` with variables replaced from `variables`; an unset variable is empty.
    static func expand(_ text: String, _ variables: [String: String]) throws(ExtendError) -> String {
        var out = ""
        var chars = Array(text)
        var i = 0
        chars.append("\0")
        while i < chars.count - 1 {
            let c = chars[i]
            if c == "\\" && chars[i + 1] == "$" {
                out.append("$")
                i += 2
                continue
            }
            guard c == "$" else {
                out.append(c)
                i += 1
                continue
            }
            if chars[i + 1] == "{" {
                guard let close = chars[(i + 2)...].firstIndex(of: "}") else {
                    throw .syntax("missing } in \"\(text)\"")
                }
                let body = String(chars[(i + 2)..<close])
                out += try braced(body, variables, text: text)
                i = close + 1
            } else {
                var j = i + 1
                while j < chars.count - 1 && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                if j == i + 1 {
                    out.append("$")
                    i += 1
                } else {
                    out += variables[String(chars[(i + 1)..<j])] ?? ""
                    i = j
                }
            }
        }
        return out
    }

    private static func braced(_ body: String, _ variables: [String: String], text: String) throws(ExtendError) -> String {
        if let r = body.firstRange(of: ":-") {
            let value = variables[String(body[..<r.lowerBound])] ?? ""
            return value.isEmpty ? try expand(String(body[r.upperBound...]), variables) : value
        }
        if let r = body.firstRange(of: ":+") {
            let value = variables[String(body[..<r.lowerBound])] ?? ""
            return value.isEmpty ? "" : try expand(String(body[r.upperBound...]), variables)
        }
        guard !body.isEmpty, body.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw .syntax("unsupported substitution ${\(body)} in \"\(text)\"")
        }
        return variables[body] ?? ""
    }

    /// The exec form `["a", "b"]`, or nil when `text` is not a JSON array of strings.
    static func jsonArray(_ text: String) -> [String]? {
        let t = text.trimmingSpaces
        guard t.hasPrefix("["), t.hasSuffix("]") else { return nil }
        var items: [String] = []
        var chars = Array(t.dropFirst().dropLast())[...]
        func skipSpace() { while let f = chars.first, f == " " || f == "\t" { chars = chars.dropFirst() } }
        skipSpace()
        if chars.isEmpty { return [] }
        while true {
            skipSpace()
            guard chars.first == "\"" else { return nil }
            chars = chars.dropFirst()
            var item = ""
            while let f = chars.first, f != "\"" {
                chars = chars.dropFirst()
                if f == "\\", let next = chars.first {
                    chars = chars.dropFirst()
                    switch next {
                    case "n": item.append("\n")
                    case "t": item.append("\t")
                    default: item.append(next)
                    }
                } else {
                    item.append(f)
                }
            }
            guard chars.first == "\"" else { return nil }
            chars = chars.dropFirst()
            items.append(item)
            skipSpace()
            if chars.isEmpty { return items }
            guard chars.first == "," else { return nil }
            chars = chars.dropFirst()
        }
    }

    /// Splits on unquoted blanks; quotes (`"…"`, `'…'`) are removed, `\` escapes the next character
    /// outside single quotes.
    static func split(_ text: String) throws(ExtendError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for c in text {
            if escaped {
                current.append(c)
                escaped = false
                continue
            }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { current.append(c) }
                continue
            }
            switch c {
            case "\"", "'":
                quote = c
                inWord = true
            case "\\":
                escaped = true
                inWord = true
            case " ", "\t":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(c)
                inWord = true
            }
        }
        guard quote == nil else { throw .syntax("unterminated quote in \"\(text)\"") }
        if inWord { words.append(current) }
        return words
    }

    /// `KEY=VALUE …` pairs (ENV, LABEL), or the legacy `KEY VALUE` form when the first word has
    /// no `=` (the value is the rest of the line).
    static func keyValues(_ text: String) throws(ExtendError) -> [(key: String, value: String)] {
        let words = try split(text)
        guard let first = words.first else { throw .syntax("expected KEY=VALUE") }
        if !first.contains("=") {
            let rest = text.trimmingSpaces.dropFirst(first.count).trimmingSpaces
            guard !rest.isEmpty else { throw .syntax("\(first) has no value (expected KEY=VALUE)") }
            return [(first, try split(rest).joined(separator: " "))]
        }
        return try words.map { word throws(ExtendError) in
            guard let eq = word.firstIndex(of: "="), eq != word.startIndex else { throw .syntax("expected KEY=VALUE, found \"\(word)\"") }
            return (String(word[..<eq]), String(word[word.index(after: eq)...]))
        }
    }
}
