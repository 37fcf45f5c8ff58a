import Buildpacks

/// Build plan resolution (buildpack.md, Detection > Phase #1, "Resolution"), as a pure function
/// of the passing modules' Build Plans, resolved as the reference lifecycle does:
/// - each module offers its top-level plan, then each `[[or]]` alternative in order; trials run
///   depth first with the last module changing fastest;
/// - a module is optional in a trial only with its last alternative (the earlier ones are
///   preferred plans, not permission to drop it);
/// - in a trial, every optional module with a require no earlier module provides, and every
///   optional module whose provide no later module requires, is removed at once; that repeats
///   until stable; a non-optional module with such a problem fails the trial.
public enum PlanResolution {
    /// A passing module: an identity, whether the group marks it optional, its Build Plan.
    public struct Input<Element: Hashable & Sendable>: Sendable {
        public var element: Element
        public var optional: Bool
        public var plan: BuildPlan
        public init(element: Element, optional: Bool, plan: BuildPlan) {
            self.element = element
            self.optional = optional
            self.plan = plan
        }
    }

    /// A resolved entry: the modules that provide a dependency and what requires it.
    public struct Entry<Element: Hashable & Sendable>: Sendable, Hashable {
        public var providers: [Element]
        public var requires: [Require]
        public init(providers: [Element], requires: [Require]) {
            self.providers = providers
            self.requires = requires
        }
    }

    /// The modules that take part, in group order, and the plan entries in order of first require.
    public struct Resolved<Element: Hashable & Sendable>: Sendable {
        public var elements: [Element]
        public var entries: [Entry<Element>]
        /// 1-based number of the trial that succeeded.
        public var trial: Int
    }

    /// Why no trial succeeded: the reason of the last one, and how many ran.
    public struct Failure: Error, Sendable, Hashable {
        public var reason: String
        public var trials: Int
    }

    /// The number of trials tried before giving up (each module multiplies them).
    public static let maximumTrials = 10_000

    public static func resolve<Element>(_ inputs: [Input<Element>], describe: (Element) -> String,
                                        log: (String) -> Void = { _ in }) -> Result<Resolved<Element>, Failure> {
        let options = inputs.map { input in
            input.plan.alternatives.enumerated().map { index, alternative in
                Option(element: input.element, optional: input.optional && index == input.plan.or.count, sections: alternative)
            }
        }
        guard !options.contains(where: \.isEmpty) else { return .failure(Failure(reason: "no module passed", trials: 0)) }
        var indexes = [Int](repeating: 0, count: options.count)
        var count = 0
        var lastReason = "no module passed"
        while count < maximumTrials {
            count += 1
            let trial = zip(options, indexes).map { $0[$1] }
            log("Resolving plan... (try #\(count))")
            switch run(trial, describe: describe, log: log) {
            case .success(let resolved):
                return .success(Resolved(elements: resolved.elements, entries: resolved.entries, trial: count))
            case .failure(let reason):
                lastReason = reason
            }
            // Advance like an odometer, the last module fastest.
            var i = indexes.count - 1
            while i >= 0 {
                indexes[i] += 1
                if indexes[i] < options[i].count { break }
                indexes[i] = 0
                i -= 1
            }
            if i < 0 { break }
        }
        return .failure(Failure(reason: lastReason, trials: count))
    }

    struct Option<Element: Hashable & Sendable> {
        var element: Element
        var optional: Bool
        var sections: BuildPlan.Alternative
    }

    enum TrialResult<Element: Hashable & Sendable> {
        case success(elements: [Element], entries: [Entry<Element>])
        case failure(String)
    }

    /// The dependency map of a trial (the reference's depMap): per name, providers met by a later
    /// require, provides nobody required yet, requires before any provider.
    struct Dependency<Element: Hashable & Sendable> {
        var providers: [Element] = []
        var requires: [Require] = []
        var extraProvides: [Element] = []
        var earlyRequires: [Element] = []
    }

    static func run<Element>(_ start: [Option<Element>], describe: (Element) -> String,
                             log: (String) -> Void) -> TrialResult<Element> {
        var trial = start
        while true {
            var deps: [String: Dependency<Element>] = [:]
            var order: [String] = []
            for option in trial {
                for p in option.sections.provides {
                    if deps[p.name] == nil { order.append(p.name) }
                    deps[p.name, default: Dependency()].extraProvides.append(option.element)
                }
                for r in option.sections.requires {
                    if deps[r.name] == nil { order.append(r.name) }
                    var d = deps[r.name, default: Dependency()]
                    d.providers += d.extraProvides
                    d.extraProvides = []
                    if d.providers.isEmpty { d.earlyRequires.append(option.element) } else { d.requires.append(r) }
                    deps[r.name] = d
                }
            }
            var remove: Set<Element> = []
            for name in order {
                for element in deps[name]!.earlyRequires {
                    guard trial.first(where: { $0.element == element })!.optional else {
                        return .failure("\(describe(element)) requires \"\(name)\", which no earlier buildpack (or itself) provides")
                    }
                    log("skip: \(describe(element)) requires \(name)")
                    remove.insert(element)
                }
            }
            for name in order {
                for element in deps[name]!.extraProvides {
                    guard trial.first(where: { $0.element == element })!.optional else {
                        return .failure("\(describe(element)) provides \"\(name)\", which neither it nor a later buildpack requires")
                    }
                    log("skip: \(describe(element)) provides unused \(name)")
                    remove.insert(element)
                }
            }
            if remove.isEmpty {
                guard !trial.isEmpty else { return .failure("no viable buildpacks in group") }
                let entries = order.compactMap { name -> Entry<Element>? in
                    let d = deps[name]!
                    return d.requires.isEmpty ? nil : Entry(providers: d.providers, requires: d.requires)
                }
                return .success(elements: trial.map(\.element), entries: entries)
            }
            trial.removeAll { remove.contains($0.element) }
        }
    }
}
