import Foundation
import Testing
import TestSupport

/// The house rules of ARCHITECTURE.md, checked on the sources: imports point only down the
/// module table, no Swift file in Sources/ passes 400 lines, no function or initializer passes 80.
enum SourceRules {
    /// What each module may import of the project's own modules (ARCHITECTURE.md's table).
    static let allowed: [String: Set<String>] = [
        "CCairn": [],
        "CairnBasics": [],
        "CNBCore": ["CairnBasics"],
        "Processes": ["CCairn", "CairnBasics"],
        "Sandbox": ["Processes", "CairnBasics"],
        "OCI": ["CCairn", "CairnBasics", "Processes"],
        "Buildpacks": ["CNBCore"],
        "Phases": ["Buildpacks", "OCI", "Processes", "CNBCore"],
        "Extend": ["Buildpacks", "OCI", "Sandbox", "CCairn", "CairnBasics"],
        "Inventory": ["CairnBasics"],
        "Trust": ["OCI", "CNBCore", "CairnBasics"],
        "CairnPlatform": ["Buildpacks", "Extend", "Inventory", "OCI", "Phases", "Processes", "Sandbox", "Trust", "CNBCore", "CCairn", "CairnBasics"],
        "cairn": ["ArgumentParser", "Buildpacks", "CNBCore", "CairnPlatform", "Extend", "Inventory", "OCI", "Phases", "Processes", "Trust"],
        "lifecycle": ["Buildpacks", "Extend", "OCI", "Phases", "Processes", "CNBCore"],
        "launcher": ["CNBCore", "CairnBasics"],
        "cairn-bench": ["ArgumentParser", "CNBCore", "Inventory"],
    ]
    static let maxFileLines = 400
    static let maxFunctionLines = 80

    static var sourcesRoot: String { packageRoot + "/Sources" }

    /// Every Swift file under Sources/, by module (the first directory).
    static func files() throws -> [(module: String, path: String)] {
        let fm = FileManager.default
        var out: [(String, String)] = []
        for module in try fm.contentsOfDirectory(atPath: sourcesRoot).sorted() {
            guard let walker = fm.enumerator(atPath: sourcesRoot + "/" + module) else { continue }
            for case let rel as String in walker where rel.hasSuffix(".swift") {
                out.append((module, sourcesRoot + "/" + module + "/" + rel))
            }
        }
        return out
    }

    /// A line with string literals and comments removed, so braces in SQL or messages do not
    /// count; `multiline` carries whether a `"""` literal is open across lines.
    static func code(_ line: String, multiline: inout Bool) -> String {
        var out = ""
        var chars = Array(line)[...]
        while !chars.isEmpty {
            if multiline {
                guard let end = chars.firstRange(of: "\"\"\"") else { return out }
                chars = chars[end.upperBound...]
                multiline = false
                continue
            }
            if chars.starts(with: "\"\"\"") {
                multiline = true
                chars = chars.dropFirst(3)
                continue
            }
            if chars.starts(with: "//") { return out }
            if chars.first == "\"" {
                chars = chars.dropFirst()
                while let c = chars.first, c != "\"" { chars = chars.dropFirst(c == "\\" ? 2 : 1) }
                chars = chars.dropFirst()
                continue
            }
            out.append(chars.removeFirst())
        }
        return out
    }

    /// Functions and initializers longer than the budget: "file:line name (n lines)".
    static func longFunctions(_ path: String, text: String) -> [String] {
        let lines = text.components(separatedBy: "\n")
        var multiline = false
        let codeLines = lines.map { code($0, multiline: &multiline) }
        let declaration = #/(^|\s)(func\s+[^\s(<]+|init[?!]?\s*[(<])/#
        var out: [String] = []
        for (i, line) in codeLines.enumerated() {
            guard let match = line.firstMatch(of: declaration) else { continue }
            var depth = 0, opened = false, end = i
            scan: for j in i..<codeLines.count {
                for c in codeLines[j] {
                    if c == "{" { depth += 1; opened = true }
                    if c == "}" { depth -= 1 }
                    if opened && depth == 0 { end = j; break scan }
                }
                // A protocol requirement: no body.
                if !opened && j > i && codeLines[j].trimmingCharacters(in: .whitespaces).isEmpty { break }
            }
            let length = end - i + 1
            if opened && length > maxFunctionLines {
                out.append("\(path.dropFirst(packageRoot.count + 1)):\(i + 1) \(line[match.range].trimmingCharacters(in: .whitespaces)) (\(length) lines)")
            }
        }
        return out
    }
}

@Test func importsPointDownTheModuleTable() throws {
    let modules = Set(SourceRules.allowed.keys)
    var upward: [String] = []
    for (module, path) in try SourceRules.files() {
        let allowed = try #require(SourceRules.allowed[module], "\(module) is not in ARCHITECTURE.md's module table")
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where line.hasPrefix("import ") {
            let imported = String(line.dropFirst(7).split(separator: " ").first ?? "")
            if (modules.contains(imported) || imported == "ArgumentParser") && !allowed.contains(imported) {
                upward.append("\(path.dropFirst(packageRoot.count + 1)): \(module) imports \(imported)")
            }
        }
    }
    #expect(upward.isEmpty, "imports against ARCHITECTURE.md:\n\(upward.joined(separator: "\n"))")
}

@Test func swiftFilesAndFunctionsKeepTheirBudgets() throws {
    var long: [String] = []
    var longFunctions: [String] = []
    for (_, path) in try SourceRules.files() {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.hasSuffix("\n") ? text.split(separator: "\n", omittingEmptySubsequences: false).count - 1 : text.split(separator: "\n", omittingEmptySubsequences: false).count
        if lines > SourceRules.maxFileLines { long.append("\(path.dropFirst(packageRoot.count + 1)) (\(lines) lines)") }
        longFunctions += SourceRules.longFunctions(path, text: text)
    }
    #expect(long.isEmpty, "files over \(SourceRules.maxFileLines) lines:\n\(long.joined(separator: "\n"))")
    #expect(longFunctions.isEmpty, "functions over \(SourceRules.maxFunctionLines) lines:\n\(longFunctions.joined(separator: "\n"))")
}

/// The checker itself: braces in strings and comments do not count, a long body is found.
@Test func theFunctionLengthCheckerReadsBracesAsCode() {
    var body = "func long() {\n    let s = \"}}}\" // }\n    let sql = \"\"\"\n    {ID} }\n    \"\"\"\n"
    body += String(repeating: "    x()\n", count: 80) + "}\nfunc short() { }\n"
    let found = SourceRules.longFunctions(packageRoot + "/x.swift", text: body)
    #expect(found.count == 1 && found[0].contains("func long") && found[0].contains("(86 lines)"), "\(found)")
}

/// Every command of `cairn` names itself in its CommandConfiguration: without a name,
/// ArgumentParser derives one with `String(describing:)` for every command in the tree on every
/// invocation, and each derivation's first-use protocol conformance scans cost ~3 ms in all.
@Test func everyCairnCommandNamesItself() throws {
    var unnamed: [String] = []
    for (module, path) in try SourceRules.files() where module == "cairn" {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var rest = text[...]
        while let start = rest.range(of: "CommandConfiguration(") {
            var depth = 1
            var i = start.upperBound
            while depth > 0 && i < rest.endIndex {
                if rest[i] == "(" { depth += 1 } else if rest[i] == ")" { depth -= 1 }
                i = rest.index(after: i)
            }
            if !rest[start.upperBound..<i].contains("commandName:") {
                unnamed.append("\(URL(fileURLWithPath: path).lastPathComponent): line \(text[..<start.lowerBound].split(separator: "\n", omittingEmptySubsequences: false).count)")
            }
            rest = rest[i...]
        }
    }
    #expect(unnamed.isEmpty, "CommandConfiguration without commandName: \(unnamed)")
}
