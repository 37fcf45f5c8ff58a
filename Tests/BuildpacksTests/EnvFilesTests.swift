import Buildpacks
import Testing

/// The env-file rules the lifecycle and the launcher share, called directly.
@Suite struct EnvFilesTests {
    func apply(_ files: [String: String], to start: [String: String] = [:], default action: EnvFiles.Action = .override) -> [String: String] {
        var variables = start
        EnvFiles.apply(names: Array(files.keys), read: { files[$0] }, to: &variables, defaultAction: action)
        return variables
    }

    @Test func suffixesFollowTheModificationRules() {
        let out = apply(["A.override": "new", "B.default": "kept?", "C.append": "tail", "C.delim": ",", "D.prepend": "head", "D.delim": ":",
                         "E": "bare", "F.unknown": "ignored"],
                        to: ["A": "old", "B": "set", "C": "x", "D": "y"])
        #expect(out == ["A": "new", "B": "set", "C": "x,tail", "D": "head:y", "E": "bare"])
    }

    @Test func aBareFileTakesTheDirectorysDefaultAction() {
        #expect(apply(["E": "value"], to: ["E": "set"], default: .default) == ["E": "set"])
        #expect(apply(["E": "value"], to: [:], default: .default) == ["E": "value"])
    }

    @Test func filesApplyInByteOrder() {
        // "V.append" < "V.override" < "V.prepend" by bytes: override wins over the append before it.
        #expect(apply(["V.append": "a", "V.override": "o", "V.prepend": "p"], to: ["V": "start"]) == ["V": "po"])
        #expect(EnvFiles.sorted(["b", "B", "a", "_"]) == ["B", "_", "a", "b"])
    }

    @Test func noDelimiterWhenTheVariableWasEmpty() {
        #expect(apply(["P.prepend": "/x", "P.delim": ":"]) == ["P": "/x"])
        #expect(EnvFiles.prependingPath("/a", to: nil) == "/a" && EnvFiles.prependingPath("/a", to: "/b") == "/a:/b")
    }

    @Test func envEntriesSplitAtTheFirstEqualsSign() {
        #expect(EnvEntry.split("A=b=c")! == ("A", "b=c"))
        #expect(EnvEntry.split("EMPTY=")! == ("EMPTY", ""))
        #expect(EnvEntry.split("NOVALUE") == nil)
        #expect(EnvEntry.split("=x") == nil)
        #expect(EnvEntry.dictionary(["A=1", "B=2", "junk", "A=3"]) == ["A": "3", "B": "2"])
    }
}
