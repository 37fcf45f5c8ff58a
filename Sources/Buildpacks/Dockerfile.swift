/// A Dockerfile as image extensions write it (image_extension.md, Dockerfile Requirements):
/// instructions with their line numbers, after joining continuation lines and dropping comments.
/// It parses the structure the lifecycle checks and the extender applies; it does not expand
/// variables or interpret instruction arguments beyond `FROM` and `ARG`.
public struct Dockerfile: Hashable, Sendable {
    public struct Instruction: Hashable, Sendable {
        /// Upper-cased keyword: `FROM`, `RUN`, ...
        public var keyword: String
        /// The rest of the logical line, continuation lines joined.
        public var arguments: String
        /// 1-based line where the instruction starts.
        public var line: Int
    }

    public var instructions: [Instruction]

    /// Instructions extension Dockerfiles may contain; others get a warning (SHOULD NOT).
    public static let recommendedKeywords: Set<String> = ["FROM", "ADD", "ARG", "COPY", "ENV", "LABEL", "RUN", "SHELL", "USER", "WORKDIR"]
    /// `ARG base_image` / `FROM ${base_image}`: the image being extended.
    public static let baseImageArg = "base_image"

    /// Parses Dockerfile text; `file` names the source in errors.
    /// - Throws: `TOMLFileError.invalid` naming the file and line (a line without an instruction keyword).
    public init(parsing text: String, file: String) throws {
        var escape: Character = "\\"
        var instructions: [Instruction] = []
        var pending: (keyword: String, arguments: String, line: Int)?
        var directivesAllowed = true
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            var line = Substring(raw.hasSuffix("\r") ? raw.dropLast() : raw)
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("#") {
                // Parser directives (`# escape=`` ` ``) only before any instruction or other comment.
                if directivesAllowed, let d = Self.directive(trimmed), d.name == "escape" {
                    guard d.value == "\\" || d.value == "`" else {
                        throw TOMLFileError.invalid(file: file, key: "line \(number)", message: "escape directive must be \\ or `")
                    }
                    escape = Character(d.value)
                } else {
                    directivesAllowed = false
                }
                continue   // comments are removed, also inside continued instructions
            }
            directivesAllowed = false
            if trimmed.isEmpty && pending == nil { continue }
            // A trailing escape character (before optional whitespace) continues the instruction.
            let body = line.reversed().drop { $0 == " " || $0 == "\t" }
            let continues = body.first == escape
            if continues { line = Substring(String(body.dropFirst().reversed())) }
            if var p = pending {
                p.arguments += (p.arguments.isEmpty ? "" : " ") + line.trimmingSpaces
                pending = p
            } else {
                let words = line.trimmingSpaces.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                guard let first = words.first, first.allSatisfy({ $0.isLetter }) else {
                    throw TOMLFileError.invalid(file: file, key: "line \(number)",
                                                message: "expected an instruction (FROM, RUN, COPY, ...), found \"\(line.trimmingSpaces)\"")
                }
                pending = (first.uppercased(), words.count > 1 ? String(words[1]).trimmingSpaces : "", number)
            }
            if !continues, let p = pending {
                instructions.append(Instruction(keyword: p.keyword, arguments: p.arguments, line: p.line))
                pending = nil
            }
        }
        if let p = pending { instructions.append(Instruction(keyword: p.keyword, arguments: p.arguments, line: p.line)) }
        self.instructions = instructions
    }

    static func directive(_ comment: Substring) -> (name: String, value: String)? {
        let body = comment.dropFirst().trimmingSpaces
        guard let eq = body.firstIndex(of: "=") else { return nil }
        let name = body[..<eq].trimmingSpaces.lowercased()
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter }) else { return nil }
        return (name, body[body.index(after: eq)...].trimmingSpaces)
    }

    /// The `FROM` instructions.
    public var froms: [Instruction] { instructions.filter { $0.keyword == "FROM" } }

    /// The image named by a `FROM` instruction (flags such as `--platform=` and `AS name` left out).
    public static func image(of from: Instruction) -> String? {
        from.arguments.split(whereSeparator: { $0 == " " || $0 == "\t" }).first { !$0.hasPrefix("--") }.map(String.init)
    }

    /// Whether `image` names the image being extended: `${base_image}` (or `$base_image`).
    public static func isBaseImage(_ image: String) -> Bool {
        image == "${\(baseImageArg)}" || image == "$\(baseImageArg)"
    }

    /// The name an `ARG` instruction declares (`ARG name` or `ARG name=default`).
    public static func argName(of arg: Instruction) -> String {
        let word = arg.arguments.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
        return String(word.split(separator: "=", maxSplits: 1).first ?? "")
    }

    /// Instructions outside the recommended set, for warnings.
    public var unrecommended: [Instruction] { instructions.filter { !Self.recommendedKeywords.contains($0.keyword) } }
}

/// What a `run.Dockerfile` does to the run image.
public struct RunDockerfileEffect: Hashable, Sendable {
    /// The image it switches to; nil when it builds `FROM ${base_image}`.
    public var newBase: String?
    /// Whether it has instructions that change the image beyond choosing it.
    public var extends: Bool

    public init(newBase: String?, extends: Bool) {
        self.newBase = newBase
        self.extends = extends
    }
}

extension Dockerfile {
    /// Checks a `build.Dockerfile`: it MUST begin with `ARG base_image` then `FROM ${base_image}`
    /// and MUST NOT contain any other `FROM`.
    /// - Throws: `TOMLFileError.invalid` naming the file and line.
    public func validateAsBuildDockerfile(file: String) throws {
        let froms = self.froms
        guard froms.count == 1 else {
            throw TOMLFileError.invalid(file: file, key: froms.dropFirst().first.map { "line \($0.line)" } ?? "",
                message: froms.isEmpty ? "a build.Dockerfile must contain FROM ${base_image}"
                                       : "a build.Dockerfile must contain exactly one FROM (multi-stage builds are not allowed)")
        }
        let before = instructions.prefix { $0.keyword != "FROM" }
        guard before.count == 1, before[before.startIndex].keyword == "ARG",
              Self.argName(of: before[before.startIndex]) == Self.baseImageArg else {
            throw TOMLFileError.invalid(file: file, key: "line \(instructions.first?.line ?? 1)",
                message: "a build.Dockerfile must begin with \"ARG base_image\" followed by \"FROM ${base_image}\"")
        }
        guard let image = Self.image(of: froms[0]), Self.isBaseImage(image) else {
            throw TOMLFileError.invalid(file: file, key: "line \(froms[0].line)",
                message: "a build.Dockerfile must build FROM ${base_image}, found FROM \(froms[0].arguments)")
        }
    }

    /// Checks a `run.Dockerfile` (one `FROM`, and `ARG`s only before it) and says what it does.
    /// - Throws: `TOMLFileError.invalid` naming the file and line.
    public func validateAsRunDockerfile(file: String) throws -> RunDockerfileEffect {
        let froms = self.froms
        guard froms.count == 1 else {
            throw TOMLFileError.invalid(file: file, key: froms.dropFirst().first.map { "line \($0.line)" } ?? "",
                message: froms.isEmpty ? "a run.Dockerfile must contain one FROM (${base_image} or an image to switch to)"
                                       : "a run.Dockerfile must contain exactly one FROM (multi-stage builds are not allowed)")
        }
        if let misplaced = instructions.prefix(while: { $0.keyword != "FROM" }).first(where: { $0.keyword != "ARG" }) {
            throw TOMLFileError.invalid(file: file, key: "line \(misplaced.line)",
                message: "only ARG may come before FROM, found \(misplaced.keyword)")
        }
        guard let image = Self.image(of: froms[0]) else {
            throw TOMLFileError.invalid(file: file, key: "line \(froms[0].line)", message: "FROM names no image")
        }
        let after = instructions.drop { $0.keyword != "FROM" }.dropFirst()
        let isBase = Self.isBaseImage(image)
        return RunDockerfileEffect(newBase: isBase ? nil : image, extends: isBase || !after.isEmpty)
    }
}

/// `<output>/extend-config.toml` (image_extension.md, extend-config.toml).
public struct ExtendConfigFile: Codable, Hashable, Sendable {
    public var build: Args?
    public var run: Args?

    public struct Args: Codable, Hashable, Sendable {
        public var args: [Arg]
        public init(args: [Arg]) { self.args = args }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            args = try c.decodeIfPresent([Arg].self, forKey: .args) ?? []
        }
    }

    public struct Arg: Codable, Hashable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            value = try c.decode(String.self, forKey: .value)
            guard !name.isEmpty else { throw decoder.invalid("a build arg needs a non-empty name") }
        }
    }

    public init(build: Args? = nil, run: Args? = nil) {
        self.build = build
        self.run = run
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (Dockerfile and TOML whitespace).
    public var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
