import CNBCore
import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What one lifecycle run left behind, as named artifacts in one value model (TOML's), so that a
/// single structural comparison serves exit codes, TOML files, env files and file trees:
/// `exit` → integer, `file:<rel>` → the parsed TOML table (or text), `tree:<rel>` → one table
/// entry per path (type, mode, owner, content), `env:<rel>` → a `K=V` dump as a table.
struct Observation {
    var artifacts: [String: TOMLValue] = [:]
    /// What the lifecycle printed, shown beside a difference (never compared: messages differ).
    var log = ""

    mutating func exit(_ status: Int32) { artifacts["exit"] = .integer(Int(status)) }

    /// A TOML file by its path relative to the case root; absent files are recorded as absent.
    mutating func toml(_ root: String, _ rel: String, as name: String? = nil) {
        artifacts[name ?? "file:" + rel] = Self.tomlValue(root + "/" + rel)
    }

    /// The one image of an OCI layout, as `describe_image.py` (Python's tarfile, not Cairn's
    /// reader) sees it: config fields and labels, and every layer's entries.
    mutating func image(_ layout: String, as name: String) throws {
        guard FileManager.default.fileExists(atPath: layout + "/index.json") else {
            artifacts[name] = .string("<no image at \(layout)>")
            return
        }
        try describe([layout], as: name)
    }

    /// The image `reference` in a loopback registry (plain HTTP), described the same way.
    mutating func image(registry reference: String, as name: String) throws {
        try describe(["--registry", reference], as: name)
    }

    mutating func describe(_ arguments: [String], as name: String) throws {
        let r = try run(["python3", fixturesRoot + "/differential/describe_image.py"] + arguments)
        guard r.status == 0 else { throw TestSupportError("describe_image.py \(arguments.joined(separator: " ")): \(r.stderr)") }
        artifacts[name] = Self.value(json: try JSONSerialization.jsonObject(with: r.stdoutData))
    }

    static func value(json: Any) -> TOMLValue {
        switch json {
        case let s as String: return .string(s)
        case let b as Bool where type(of: json) == Bool.self || String(describing: type(of: json)).contains("Bool"): return .bool(b)
        case let n as NSNumber:
            return n.doubleValue == Double(n.intValue) ? .integer(n.intValue) : .float(n.doubleValue)
        case let a as [Any]: return .array(a.map(value(json:)))
        case let d as [String: Any]: return .table(d.mapValues(value(json:)))
        default: return .string("<null>")
        }
    }

    /// Digests the lifecycle produced (its tar writer's layers, manifests, configs) replaced by
    /// `<digest>`; digests in `keeping` (the inputs') stay, so a wrong run image still shows.
    func maskingProducedDigests(keeping: Set<String>) -> Observation {
        var copy = self
        copy.artifacts = artifacts.mapValues { Self.mask($0, keeping) }
        return copy
    }

    /// Every string (and key) with `text` replaced.
    func replacing(_ text: String, with replacement: String) -> Observation {
        func walk(_ v: TOMLValue) -> TOMLValue {
            switch v {
            case .string(let s): return .string(s.replacingOccurrences(of: text, with: replacement))
            case .array(let a): return .array(a.map(walk))
            case .table(let t):
                var out: [String: TOMLValue] = [:]
                for (k, x) in t { out[k.replacingOccurrences(of: text, with: replacement)] = walk(x) }
                return .table(out)
            default: return v
            }
        }
        var copy = self
        copy.artifacts = artifacts.mapValues(walk)
        return copy
    }

    static var hexDigest: Regex<Substring> { #/[0-9a-f]{64}/# }

    static func mask(_ v: TOMLValue, _ keeping: Set<String>) -> TOMLValue {
        switch v {
        case .string(let s): return .string(maskText(s, keeping))
        case .array(let a): return .array(a.map { mask($0, keeping) })
        case .table(let t):
            var out: [String: TOMLValue] = [:]
            for (k, x) in t { out[maskText(k, keeping)] = mask(x, keeping) }
            return .table(out)
        default: return v
        }
    }

    static func maskText(_ s: String, _ keeping: Set<String>) -> String {
        guard s.count >= 64 else { return s }
        var out = ""
        var last = s.startIndex
        for m in s.matches(of: hexDigest) {
            out += s[last..<m.range.lowerBound]
            out += keeping.contains(String(m.output)) ? String(m.output) : "<digest>"
            last = m.range.upperBound
        }
        return out + s[last...]
    }

    /// A `KEY=VALUE` per line dump (what the fixture buildpacks and processes record); keys in
    /// `presenceOnly` hold values that differ from run to run (temporary paths): whether they
    /// are set is compared, not their value.
    mutating func envDump(_ root: String, _ rel: String, presenceOnly: Set<String> = []) {
        artifacts["env:" + rel] = Self.envValue(root + "/" + rel, presenceOnly: presenceOnly)
    }

    mutating func text(_ name: String, _ text: String) { artifacts["text:" + name] = .string(text) }

    /// What the fixture buildpacks recorded in `<root>/out`: env dumps (`presenceOnly` values
    /// compared by presence) and TOML files (the Buildpack Plans they got).
    mutating func recorded(_ root: String, presenceOnly: Set<String>) {
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: root + "/out")) ?? []).sorted() {
            if file.hasSuffix(".toml") { toml(root, "out/" + file) } else { envDump(root, "out/" + file, presenceOnly: presenceOnly) }
        }
    }

    /// Every path under `rel`: type, permission bits, owner, and content (TOML parsed, other
    /// text as is, binary as a digest). Paths in `skip` (relative to `rel`) are left out.
    mutating func tree(_ root: String, _ rel: String, as name: String? = nil, skip: Set<String> = []) {
        var entries: [String: TOMLValue] = [:]
        let base = root + "/" + rel
        let walker = FileManager.default.enumerator(atPath: base)
        while let sub = walker?.nextObject() as? String {
            if skip.contains(sub) || skip.contains(where: { sub.hasPrefix($0 + "/") }) { continue }
            entries[sub] = Self.entry(base + "/" + sub)
        }
        artifacts[name ?? "tree:" + rel] = .table(entries)
    }

    static func entry(_ path: String) -> TOMLValue {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .string("<unreadable>") }
        var fields: [String: TOMLValue] = [
            "mode": .string(String(Int(st.st_mode) & 0o7777, radix: 8)),
            "uid": .integer(Int(st.st_uid)),
        ]
        switch st.st_mode & S_IFMT {
        case S_IFDIR: fields["type"] = .string("dir")
        case S_IFLNK:
            fields["type"] = .string("symlink")
            fields["target"] = .string((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
        case S_IFREG:
            fields["type"] = .string("file")
            fields["content"] = path.hasSuffix(".toml") ? tomlValue(path) : contentValue(path)
        default: fields["type"] = .string("other")
        }
        return .table(fields)
    }

    static func tomlValue(_ path: String) -> TOMLValue {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return .string("<absent>") }
        do { return .table(try TOMLParser.parse(text)) } catch { return .string("<invalid TOML: \(error)>\n" + text) }
    }

    static func contentValue(_ path: String) -> TOMLValue {
        guard let data = FileManager.default.contents(atPath: path) else { return .string("<unreadable>") }
        if data.count <= 65_536, let s = String(data: data, encoding: .utf8) { return .string(s) }
        return .string("<\(data.count) bytes>")
    }

    static func envValue(_ path: String, presenceOnly: Set<String>) -> TOMLValue {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return .string("<absent>") }
        return envValue(text: text, presenceOnly: presenceOnly)
    }

    static func envValue(text: String, presenceOnly: Set<String>) -> TOMLValue {
        var table: [String: TOMLValue] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let eq = line.firstIndex(of: "=") else {
                if !line.isEmpty { table["<line>" + line] = .bool(true) }
                continue
            }
            let key = String(line[..<eq])
            table[key] = .string(presenceOnly.contains(key) ? "<set>" : String(line[line.index(after: eq)...]))
        }
        return .table(table)
    }
}

/// One place where the two lifecycles' observations differ.
struct Difference: CustomStringConvertible {
    /// `<artifact>#<path>`, e.g. `file:layers/group.toml#group[0].api`.
    var key: String
    var reference: String
    var cairn: String
    var description: String { "\(key): reference \(reference), cairn \(cairn)" }

    static func between(_ reference: Observation, _ cairn: Observation) -> [Difference] {
        var out: [Difference] = []
        for name in Set(reference.artifacts.keys).union(cairn.artifacts.keys).sorted() {
            compare(reference.artifacts[name], cairn.artifacts[name], at: name + "#", into: &out)
        }
        return out
    }

    static func compare(_ a: TOMLValue?, _ b: TOMLValue?, at path: String, into out: inout [Difference]) {
        switch (a, b) {
        case (.table(let x)?, .table(let y)?):
            for key in Set(x.keys).union(y.keys).sorted() {
                let sep = path.hasSuffix("#") ? "" : "."
                compare(x[key], y[key], at: path + sep + quoteKey(key), into: &out)
            }
        case (.array(let x)?, .array(let y)?) where x.count == y.count:
            for i in x.indices { compare(x[i], y[i], at: path + "[\(i)]", into: &out) }
        default:
            guard a != b else { return }
            out.append(Difference(key: path, reference: render(a), cairn: render(b)))
        }
    }

    static func quoteKey(_ key: String) -> String {
        key.allSatisfy({ $0.isLetter || $0.isNumber || "-_/@".contains($0) }) ? key : "\"\(key)\""
    }

    static func render(_ v: TOMLValue?) -> String {
        guard let v else { return "<absent>" }
        let text = v.jsonText
        return text.count > 400 ? String(text.prefix(400)) + "…" : text
    }
}
