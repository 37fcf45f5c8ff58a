import Phases

/// The phases' command lines, read without swift-argument-parser (which was 0.4 MB of the static
/// lifecycle for flags that GoFlags has already put in one canonical form: `--name` for a true
/// boolean, `--name=value`, `--help`, and `--` before the positional arguments). Commands
/// declare their flags as before (`@Option(name: .dash("app"), help: …) var app: String?`);
/// `parse` finds the declarations by reflection, in declaration order, and fills them in.

/// A flag's name as the reference lifecycle spells it (`-app`; `--app` is read too).
struct FlagName {
    let name: String
    static func dash(_ name: String) -> FlagName { FlagName(name: name) }
}

struct CommandConfiguration {
    var commandName: String
    var abstract: String
}

/// Ends the phase with this exit status (thrown from `run`).
struct ExitCode: Error {
    let rawValue: Int32
    init(_ rawValue: Int32) { self.rawValue = rawValue }
}

/// A set of declared flags and arguments; `init()` gives each its default.
protocol ParsableArguments {
    init()
}

protocol AsyncParsableCommand: ParsableArguments {
    static var configuration: CommandConfiguration { get }
    func run() async throws
}

/// A command line that does not fit the declarations.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// What is left of a canonical command line while the declarations take their parts.
struct ParsedArguments {
    var flags: [String: [String]] = [:]
    var positionals: [String] = []
    var help = false

    init(canonical: [String]) {
        var i = 0
        while i < canonical.count {
            let arg = canonical[i]
            i += 1
            if arg == "--" {
                positionals += canonical[i...]
                break
            }
            if arg == "--help" {
                help = true
                continue
            }
            let body = arg.dropFirst(2)
            if let eq = body.firstIndex(of: "=") {
                flags[String(body[..<eq]), default: []].append(String(body[body.index(after: eq)...]))
            } else {
                flags[String(body), default: []].append("")
            }
        }
    }
}

/// A declaration inside a command: it takes its part of the command line.
protocol Declaration: AnyObject {
    func take(_ parsed: inout ParsedArguments) throws(UsageError)
    /// For `-help`: the flag or argument and what it is.
    var usage: (name: String, help: String) { get }
}

/// A value a flag carries: the last occurrence (`String?`, `Int?`) or all of them (`[String]`).
protocol FlagValue {
    static func from(_ values: [String], flag: String) throws(UsageError) -> Self
}

extension Optional: FlagValue where Wrapped: LosslessStringConvertible {
    static func from(_ values: [String], flag: String) throws(UsageError) -> Self {
        guard let last = values.last else { return nil }
        guard let v = Wrapped(last) else { throw UsageError(description: "invalid value \"\(last)\" for -\(flag)") }
        return v
    }
}

extension Array: FlagValue where Element == String {
    static func from(_ values: [String], flag: String) throws(UsageError) -> Self { values }
}

@propertyWrapper
final class Option<Value: FlagValue>: Declaration {
    let name: String
    let help: String
    private var value: Value
    var wrappedValue: Value { value }

    init(wrappedValue: Value, name: FlagName, help: String) {
        self.value = wrappedValue
        self.name = name.name
        self.help = help
    }

    init(name: FlagName, help: String) where Value: ExpressibleByNilLiteral {
        self.value = nil
        self.name = name.name
        self.help = help
    }

    func take(_ parsed: inout ParsedArguments) throws(UsageError) {
        guard let values = parsed.flags.removeValue(forKey: name) else { return }
        value = try Value.from(values, flag: name)
    }

    var usage: (name: String, help: String) { ("-\(name) value", help) }
}

@propertyWrapper
final class Flag: Declaration {
    let name: String
    let help: String
    private var value: Bool
    var wrappedValue: Bool { value }

    init(wrappedValue: Bool, name: FlagName, help: String) {
        self.value = wrappedValue
        self.name = name.name
        self.help = help
    }

    func take(_ parsed: inout ParsedArguments) throws(UsageError) {
        if parsed.flags.removeValue(forKey: name) != nil { value = true }
    }

    var usage: (name: String, help: String) { ("-\(name)", help) }
}

/// A positional argument: one (`String`, required) or the rest (`[String]`).
@propertyWrapper
final class Argument<Value>: Declaration {
    let help: String
    private var value: Value?
    var wrappedValue: Value { value! }

    init(help: String) where Value == String {
        self.help = help
    }

    init(wrappedValue: Value, help: String) where Value == [String] {
        self.value = wrappedValue
        self.help = help
    }

    func take(_ parsed: inout ParsedArguments) throws(UsageError) {
        if Value.self == [String].self {
            value = (parsed.positionals as! Value)
            parsed.positionals.removeAll()
        } else {
            guard !parsed.positionals.isEmpty else { throw UsageError(description: "missing argument: \(help.lowercased())") }
            value = (parsed.positionals.removeFirst() as! Value)
        }
    }

    var usage: (name: String, help: String) { (Value.self == [String].self ? "<args>..." : "<arg>", help) }
}

/// The declarations of another `ParsableArguments` type, shared by several commands.
@propertyWrapper
final class OptionGroup<Value: ParsableArguments> {
    let wrappedValue: Value
    init() { wrappedValue = Value() }
}

enum CommandLineReader {
    /// The declarations of `value` and of its option groups, in declaration order.
    static func declarations(of value: Any) -> [any Declaration] {
        var out: [any Declaration] = []
        for child in Mirror(reflecting: value).children {
            if let d = child.value as? any Declaration {
                out.append(d)
            } else if let group = child.value as? any GroupBox {
                out += declarations(of: group.groupValue)
            }
        }
        return out
    }

    /// `type` with its declarations filled in from `canonical` (GoFlags' output). Nil when
    /// `-help` was asked for (the usage is printed).
    static func parse(_ type: any AsyncParsableCommand.Type, _ canonical: [String]) throws(UsageError) -> (any AsyncParsableCommand)? {
        var parsed = ParsedArguments(canonical: canonical)
        let command = type.init()
        let declared = declarations(of: command)
        if parsed.help {
            print(usage(type, declared))
            return nil
        }
        for d in declared { try d.take(&parsed) }
        if let unknown = parsed.flags.keys.sorted().first { throw UsageError(description: "flag provided but not defined: -\(unknown)") }
        if let extra = parsed.positionals.first { throw UsageError(description: "unexpected argument \"\(extra)\"") }
        return command
    }

    static func usage(_ type: any AsyncParsableCommand.Type, _ declared: [any Declaration]) -> String {
        let c = type.configuration
        var lines = ["Usage: \(c.commandName) [flags]" + (declared.contains { $0 is Argument<String> } ? " <image>" : ""), "", c.abstract, "", "Flags:"]
        for d in declared {
            let u = d.usage
            lines.append("  " + u.name + String(repeating: " ", count: max(2, 26 - u.name.count)) + u.help)
        }
        return lines.joined(separator: "\n")
    }
}

/// Lets reflection reach into an option group without knowing its type.
protocol GroupBox {
    var groupValue: Any { get }
}

extension OptionGroup: GroupBox {
    var groupValue: Any { wrappedValue }
}
