/// The tables of a TOML document while it is read, with the rules of TOML 1.0 about which
/// table may be defined or extended where:
/// - a `[table]` header defines a table once; a table made only implicitly (as the parent of
///   another header) may still get its own header later;
/// - tables made by dotted keys (`a.b.c = 1`) are closed to `[a.b]` headers and, once the next
///   header starts, to dotted keys from other sections; sub-tables may still be given headers;
/// - inline tables and arrays given as values are complete: nothing may add to them;
/// - `[[array]]` appends a table; `[array.x]` then refers to the last one.
/// The flags follow the paths of keys (not of array elements), as a table header names them.
struct TOMLDocument {
    private final class Table {
        var entries: [String: Entry] = [:]
    }

    private enum Entry {
        case value(TOMLValue)
        case table(Table)
        case tables([Table])
    }

    private final class FlagNode {
        var flags: UInt8 = 0
        var recursive: UInt8 = 0
        var nested: [String: FlagNode] = [:]
    }

    /// A value or inline table/array: nothing may add to it or below it.
    private static let frozen: UInt8 = 1
    /// Defined by a `[header]`, or by dotted keys in a finished section.
    private static let explicit: UInt8 = 2

    private let root = Table()
    private let flags = FlagNode()
    private var pending: [[String]] = []

    /// The problem with an operation, without a position: the parser adds it.
    struct Refusal: Error {
        var message: String
    }

    // MARK: Statements

    /// `[key]`.
    mutating func defineTable(_ key: [String]) throws(Refusal) {
        finishSection()
        if isSet(key, Self.explicit) || isSet(key, Self.frozen) {
            throw Refusal(message: "table [\(Self.display(key))] is defined more than once")
        }
        setFlag(key, Self.explicit, recursive: false)
        _ = try nest(key)
    }

    /// `[[key]]`.
    mutating func appendTable(_ key: [String]) throws(Refusal) {
        finishSection()
        if isSet(key, Self.frozen) {
            throw Refusal(message: "\(Self.display(key)) is an array or inline table given as a value; [[\(Self.display(key))]] cannot add to it")
        }
        unsetAll(key)
        setFlag(key, Self.explicit, recursive: false)
        let parent = try nest(Array(key.dropLast()))
        let last = key[key.count - 1]
        switch parent.entries[last] {
        case nil: parent.entries[last] = .tables([Table()])
        case .tables(let list)?: parent.entries[last] = .tables(list + [Table()])
        default: throw Refusal(message: "\(Self.display(key)) is already a table or value, not an array of tables")
        }
    }

    /// `key = value` in the section under `header`.
    mutating func setValue(header: [String], key: [String], value: TOMLValue) throws(Refusal) {
        for n in 1..<key.count {
            let container = header + key[..<n]
            if isSet(container, Self.explicit) {
                throw Refusal(message: "dotted key \(Self.display(key)) adds to table \(Self.display(container)), which is defined elsewhere")
            }
            pending.append(container)
        }
        let parentKey = header + key.dropLast()
        if isSet(parentKey, Self.frozen) {
            throw Refusal(message: "\(Self.display(parentKey)) is an array or inline table given as a value; it cannot be extended")
        }
        let parent = try nest(parentKey)
        let stem = key[key.count - 1]
        guard parent.entries[stem] == nil else {
            throw Refusal(message: "key \(Self.display(header + key)) is defined more than once")
        }
        parent.entries[stem] = .value(value)
        switch value {
        case .table, .array: setFlag(header + key, Self.frozen, recursive: true)
        default: break
        }
    }

    /// The document read so far.
    func result() -> [String: TOMLValue] { Self.value(of: root) }

    // MARK: Tables

    /// The table at `key`, made (implicitly) where missing; the last table of an array of tables.
    private func nest(_ key: [String]) throws(Refusal) -> Table {
        var current = root
        for (n, k) in key.enumerated() {
            switch current.entries[k] {
            case nil:
                let t = Table()
                current.entries[k] = .table(t)
                current = t
            case .table(let t)?: current = t
            case .tables(let list)?: current = list[list.count - 1]
            case .value?:
                throw Refusal(message: "\(Self.display(Array(key[...n]))) is a value, not a table")
            }
        }
        return current
    }

    private static func value(of table: Table) -> [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        out.reserveCapacity(table.entries.count)
        for (k, e) in table.entries {
            switch e {
            case .value(let v): out[k] = v
            case .table(let t): out[k] = .table(value(of: t))
            case .tables(let list): out[k] = .array(list.map { .table(value(of: $0)) })
            }
        }
        return out
    }

    // MARK: Flags

    private mutating func finishSection() {
        for key in pending { setFlag(key, Self.explicit, recursive: false) }
        pending.removeAll()
    }

    private func setFlag(_ key: [String], _ flag: UInt8, recursive: Bool) {
        var node = flags
        for k in key {
            if let next = node.nested[k] { node = next } else {
                let next = FlagNode()
                node.nested[k] = next
                node = next
            }
        }
        if recursive { node.recursive |= flag } else { node.flags |= flag }
    }

    private func unsetAll(_ key: [String]) {
        var node = flags
        for k in key.dropLast() {
            guard let next = node.nested[k] else { return }
            node = next
        }
        node.nested[key[key.count - 1]] = nil
    }

    /// Whether `flag` is set on `key`, or recursively on one of its ancestors or itself.
    private func isSet(_ key: [String], _ flag: UInt8) -> Bool {
        guard !key.isEmpty else { return false }
        var node = flags
        for k in key.dropLast() {
            guard let next = node.nested[k] else { return false }
            if next.recursive & flag != 0 { return true }
            node = next
        }
        guard let last = node.nested[key[key.count - 1]] else { return false }
        return (last.flags | last.recursive) & flag != 0
    }

    /// A key path as TOML writes it: bare parts as they are, others quoted.
    static func display<S: Sequence<String>>(_ key: S) -> String {
        key.map(TOMLText.key).joined(separator: ".")
    }
}
