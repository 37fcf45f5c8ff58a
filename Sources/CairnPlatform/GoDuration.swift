/// Durations as Go's `time.ParseDuration` reads them (and as pack and the lifecycle's users write
/// them): a sequence of decimal numbers, each with a unit, e.g. `90s`, `1.5h`, `2h45m`, `300ms`.
/// Units: ns, us (µs), ms, s, m, h. A bare `0` is zero.
public enum GoDuration {
    public static func parse(_ text: String) -> Duration? {
        var s = Substring(text)
        var negative = false
        if let f = s.first, f == "+" || f == "-" {
            negative = f == "-"
            s = s.dropFirst()
        }
        if s == "0" { return .zero }
        guard !s.isEmpty else { return nil }
        var total = 0.0   // nanoseconds
        while !s.isEmpty {
            let number = s.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1, let value = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            let unit = s.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            s = s.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            total += value * scale
        }
        guard total < 9.2e18 else { return nil }
        let d = Duration.nanoseconds(Int64(total))
        return negative ? .zero - d : d
    }
}
