import Buildpacks
import Testing

@Suite struct DockerfileTests {
    func parse(_ text: String) throws -> Dockerfile { try Dockerfile(parsing: text, file: "x.Dockerfile") }

    @Test func joinsContinuationsAndDropsComments() throws {
        let d = try parse("""
            # comment
            ARG base_image=ubuntu
            FROM ${base_image}

            RUN apt-get update && \\
            # a comment inside the continued instruction
                apt-get install -y curl \\
                && rm -rf /var/lib/apt/lists/*
            user 1000:1000
            """)
        #expect(d.instructions.map(\.keyword) == ["ARG", "FROM", "RUN", "USER"])
        #expect(d.instructions.map(\.line) == [2, 3, 5, 9])
        #expect(d.instructions[2].arguments == "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*")
        #expect(Dockerfile.argName(of: d.instructions[0]) == "base_image")
    }

    @Test func escapeDirectiveChangesTheContinuationCharacter() throws {
        let d = try parse("# escape=`\nFROM a\nRUN echo \\ `\n  b\n")
        #expect(d.instructions.map(\.arguments) == ["a", "echo \\ b"])
    }

    @Test func fromFlagsAndStageNamesAreNotTheImage() throws {
        let d = try parse("FROM --platform=linux/amd64 example.com/run:2 AS final\n")
        #expect(Dockerfile.image(of: d.froms[0]) == "example.com/run:2")
        #expect(try d.validateAsRunDockerfile(file: "run.Dockerfile") == RunDockerfileEffect(newBase: "example.com/run:2", extends: false))
    }

    @Test func runDockerfileEffects() throws {
        #expect(try parse("ARG base_image\nFROM ${base_image}\n").validateAsRunDockerfile(file: "r")
                == RunDockerfileEffect(newBase: nil, extends: true))
        #expect(try parse("FROM other\nRUN true\n").validateAsRunDockerfile(file: "r")
                == RunDockerfileEffect(newBase: "other", extends: true))
        #expect(throws: TOMLFileError.self) { try parse("RUN true\nFROM other\n").validateAsRunDockerfile(file: "r") }
    }

    @Test func buildDockerfileMustStartWithTheBaseImageArg() throws {
        try parse("ARG base_image\nFROM ${base_image}\nRUN true\n").validateAsBuildDockerfile(file: "b")
        let bad = ["FROM ${base_image}\n", "ARG other\nFROM ${base_image}\n", "ARG base_image\nARG x\nFROM ${base_image}\n",
                   "ARG base_image\nFROM ${base_image}\nFROM x\n", "ARG base_image\n"]
        for text in bad {
            #expect(throws: TOMLFileError.self, "\(text)") { try parse(text).validateAsBuildDockerfile(file: "b") }
        }
    }

    @Test func aLineWithoutAKeywordIsAnErrorNamingTheLine() {
        #expect(throws: TOMLFileError.invalid(file: "x.Dockerfile", key: "line 2",
                                              message: "expected an instruction (FROM, RUN, COPY, ...), found \"--oops\"")) {
            try parse("FROM a\n--oops\n")
        }
    }

    @Test func extendConfig() throws {
        let c = try TOMLFile.decode(ExtendConfigFile.self, from: """
            [[build.args]]
            name = "A"
            value = "1"
            [[run.args]]
            name = "B"
            value = "2"
            """, file: "extend-config.toml")
        #expect(c.build?.args == [.init(name: "A", value: "1")])
        #expect(c.run?.args == [.init(name: "B", value: "2")])
        #expect(throws: TOMLFileError.self) {
            try TOMLFile.decode(ExtendConfigFile.self, from: "[[build.args]]\nname = \"\"\nvalue = \"1\"\n", file: "e")
        }
    }
}
