/// Booleans, numbers and datetimes (TOML 1.0's ABNF, checked byte by byte).
extension TOMLParser {
    mutating func scalar() throws(TOMLSyntaxError) -> TOMLValue {
        let start = i
        if Self.isDigit(peek) {
            if (0..<4).allSatisfy({ Self.isDigit(at(i + $0)) }) && at(i + 4) == UInt8(ascii: "-") { return try dateTime() }
            if Self.isDigit(at(i + 1)) && at(i + 2) == UInt8(ascii: ":") {
                try time()
                return .datetime(String(decoding: b[start..<i], as: UTF8.self))
            }
        }
        while i < b.count, Self.isWordByte(b[i]) { i += 1 }
        let word = b[start..<i]
        guard !word.isEmpty else { throw fail("expected a value, found \(found)") }
        if word.elementsEqual("true".utf8) { return .bool(true) }
        if word.elementsEqual("false".utf8) { return .bool(false) }
        return try number(Array(word), at: start)
    }

    private static func isWordByte(_ c: UInt8) -> Bool {
        isBareKeyByte(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
    }

    // MARK: Numbers

    private func number(_ word: [UInt8], at start: Int) throws(TOMLSyntaxError) -> TOMLValue {
        let text = String(decoding: word, as: UTF8.self)
        func invalid(_ why: String) -> TOMLSyntaxError { fail("\(text) is not a valid value: \(why)", at: start) }
        var body = word[...]
        var negative = false
        if let s = body.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") {
            negative = s == UInt8(ascii: "-")
            body = body.dropFirst()
        }
        if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if body.elementsEqual("nan".utf8) { return .float(.nan) }
        guard let first = body.first, Self.isDigit(first) else {
            throw invalid("expected a string, number, boolean, date, array or inline table")
        }
        if first == UInt8(ascii: "0"), let p = body.dropFirst().first, p == UInt8(ascii: "x") || p == UInt8(ascii: "o") || p == UInt8(ascii: "b") {
            guard word.count == body.count else { throw invalid("hexadecimal, octal and binary integers take no sign") }
            let radix = p == UInt8(ascii: "x") ? 16 : p == UInt8(ascii: "o") ? 8 : 2
            let digits = body.dropFirst(2)
            guard Self.validDigits(digits, radix: radix) else { throw invalid("expected base-\(radix) digits, '_' only between digits") }
            guard let n = Int(String(decoding: digits.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self), radix: radix) else {
                throw invalid("it does not fit in a 64-bit integer")
            }
            return .integer(n)
        }
        // Decimal: an integer part, then an optional fraction and exponent.
        let intEnd = body.firstIndex { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } ?? body.endIndex
        let intPart = body[..<intEnd]
        guard Self.validDigits(intPart, radix: 10) else { throw invalid("expected digits, '_' only between digits") }
        guard intPart.count == 1 || intPart.first != UInt8(ascii: "0") else { throw invalid("leading zeros are not allowed") }
        if intEnd == body.endIndex {
            guard let n = Int(String(decoding: word.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) else {
                throw invalid("it does not fit in a 64-bit integer")
            }
            return .integer(n)
        }
        var rest = body[intEnd...]
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            let fracEnd = rest.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } ?? rest.endIndex
            guard Self.validDigits(rest[..<fracEnd], radix: 10) else { throw invalid("expected digits after '.'") }
            rest = rest[fracEnd...]
        }
        if let e = rest.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if let s = rest.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { rest = rest.dropFirst() }
            guard Self.validDigits(rest, radix: 10) else { throw invalid("expected digits in the exponent") }
        }
        guard let d = Double(String(decoding: word.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) else {
            throw invalid("not a number")
        }
        return .float(d)
    }

    /// One or more digits of `radix`, with single underscores only between two digits.
    private static func validDigits(_ s: ArraySlice<UInt8>, radix: Int) -> Bool {
        guard let f = s.first, let l = s.last, f != UInt8(ascii: "_"), l != UInt8(ascii: "_") else { return false }
        var previousUnderscore = false
        for c in s {
            if c == UInt8(ascii: "_") {
                if previousUnderscore { return false }
                previousUnderscore = true
                continue
            }
            previousUnderscore = false
            let v: Int
            switch c {
            case 0x30...0x39: v = Int(c - 0x30)
            case 0x41...0x46: v = Int(c - 0x41) + 10
            case 0x61...0x66: v = Int(c - 0x61) + 10
            default: return false
            }
            if v >= radix { return false }
        }
        return true
    }

    // MARK: Dates and times

    /// `YYYY-MM-DD`, optionally with `T`/`t`/space, a time and an offset (`Z` or `±HH:MM`).
    private mutating func dateTime() throws(TOMLSyntaxError) -> TOMLValue {
        let start = i
        let year = try digits(4, "the year")
        try expect(UInt8(ascii: "-"), in: "a date (YYYY-MM-DD)")
        let month = try digits(2, "the month")
        try expect(UInt8(ascii: "-"), in: "a date (YYYY-MM-DD)")
        let day = try digits(2, "the day")
        guard (1...12).contains(month) else { throw fail("month \(month) is not 1 to 12", at: start) }
        guard day >= 1 && day <= Self.days(inMonth: month, year: year) else {
            throw fail("day \(day) does not exist in \(year)-\(month < 10 ? "0" : "")\(month)", at: start)
        }
        let separator = peek
        let timeFollows = separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
            || (separator == Self.space && Self.isDigit(at(i + 1)) && Self.isDigit(at(i + 2)) && at(i + 3) == UInt8(ascii: ":"))
        if timeFollows {
            i += 1
            try time()
            switch peek {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"): i += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                i += 1
                let h = try digits(2, "the offset's hours")
                try expect(UInt8(ascii: ":"), in: "an offset (±HH:MM)")
                let m = try digits(2, "the offset's minutes")
                guard h <= 23 && m <= 59 else { throw fail("offset \(h):\(m) is out of range", at: start) }
            default: break
            }
        }
        return .datetime(String(decoding: b[start..<i], as: UTF8.self))
    }

    /// `HH:MM:SS` with an optional fraction.
    private mutating func time() throws(TOMLSyntaxError) {
        let start = i
        let h = try digits(2, "the hour")
        try expect(UInt8(ascii: ":"), in: "a time (HH:MM:SS)")
        let m = try digits(2, "the minutes")
        try expect(UInt8(ascii: ":"), in: "a time (HH:MM:SS)")
        let s = try digits(2, "the seconds")
        guard h <= 23 && m <= 59 && s <= 59 else { throw fail("time \(h):\(m):\(s) is out of range", at: start) }
        if peek == UInt8(ascii: ".") {
            i += 1
            guard Self.isDigit(peek) else { throw fail("expected digits after the '.' of a time") }
            while Self.isDigit(peek) { i += 1 }
        }
    }

    private mutating func digits(_ count: Int, _ what: String) throws(TOMLSyntaxError) -> Int {
        var n = 0
        for _ in 0..<count {
            guard Self.isDigit(peek) else { throw fail("expected \(count) digits for \(what), found \(found)") }
            n = n * 10 + Int(peek - 0x30)
            i += 1
        }
        return n
    }

    private mutating func expect(_ c: UInt8, in what: String) throws(TOMLSyntaxError) {
        guard peek == c else { throw fail("expected \(Self.describe(c)) in \(what), found \(found)") }
        i += 1
    }

    private static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
