import CNBCore
import Testing

/// The launcher's process selection (platform.md, launcher Inputs), called directly.
@Suite struct LaunchSelectionTests {
    func selection(_ metadata: String, execEnv: String = "production") throws -> LaunchSelection {
        let table = try TOMLParser.parse(metadata)
        let buildpacks = (table["buildpacks"]?.array ?? []).compactMap { bp -> (id: String, api: String)? in
            guard let id = bp["id"]?.string else { return nil }
            return (id, bp["api"]?.string ?? "0.7")
        }
        return LaunchSelection(processes: (table["processes"]?.array ?? []).compactMap(\.table), buildpacks: buildpacks,
                               execEnv: execEnv, app: "/workspace")
    }

    let modern = """
        [[buildpacks]]
        id = "new/bp"
        api = "0.12"
        [[buildpacks]]
        id = "old/bp"
        api = "0.8"
        [[processes]]
        type = "web"
        command = ["python3", "app.py"]
        args = ["--port", "8080"]
        buildpack-id = "new/bp"
        working-dir = "/workspace/src"
        [[processes]]
        type = "worker"
        command = ["run-worker"]
        args = ["--queue", "a"]
        direct = false
        buildpack-id = "old/bp"
        """

    @Test func aProcessNamedByArgv0IsDirectAndUserArgsReplaceTheDefaultsFromAPI09() throws {
        let s = try selection(modern)
        #expect(try s.select(argv: ["/cnb/process/web"])
                == LaunchProcess(type: "web", command: ["python3", "app.py"], args: ["--port", "8080"], direct: true,
                                 workingDirectory: "/workspace/src"))
        #expect(try s.select(argv: ["web", "--port", "9"]).args == ["--port", "9"])
    }

    @Test func beforeAPI09UserArgsAreAppendedAndDirectIsAsDeclared() throws {
        let p = try selection(modern).select(argv: ["/cnb/process/worker", "--fast"])
        #expect(p == LaunchProcess(type: "worker", command: ["run-worker"], args: ["--queue", "a", "--fast"], direct: false,
                                   workingDirectory: "/workspace"))
    }

    @Test func theLauncherItselfTakesADirectCommandAfterDashDashOrAShellCommand() throws {
        let s = try selection(modern)
        #expect(try s.select(argv: ["/cnb/lifecycle/launcher", "--", "env", "-0"])
                == LaunchProcess(type: nil, command: ["env"], args: ["-0"], direct: true, workingDirectory: "/workspace"))
        let shell = try s.select(argv: ["launcher", "echo $HOME", "x"])
        #expect(shell.userShellCommand && !shell.direct && shell.command == ["echo $HOME"] && shell.args == ["x"])
        #expect(throws: LaunchError.self) { try s.select(argv: ["launcher"]) }
        #expect(throws: LaunchError.self) { try s.select(argv: ["launcher", "--"]) }
        // A name that is no process type is the launcher's own form.
        #expect(try s.select(argv: ["/usr/bin/other", "ls"]).userShellCommand)
    }

    @Test func execEnvChoosesTheLastEligibleProcessOfAType() throws {
        let metadata = """
            [[buildpacks]]
            id = "bp"
            api = "0.12"
            [[processes]]
            type = "web"
            command = ["serve-prod"]
            exec-env = ["production"]
            buildpack-id = "bp"
            [[processes]]
            type = "web"
            command = ["serve-test"]
            exec-env = ["test", "development"]
            buildpack-id = "bp"
            [[processes]]
            type = "any"
            command = ["anywhere"]
            exec-env = ["*"]
            buildpack-id = "bp"
            [[processes]]
            type = "ci"
            command = ["ci-only"]
            exec-env = ["test"]
            buildpack-id = "bp"
            """
        #expect(try selection(metadata).select(argv: ["web"]).command == ["serve-prod"])
        #expect(try selection(metadata, execEnv: "test").select(argv: ["web"]).command == ["serve-test"])
        #expect(try selection(metadata, execEnv: "development").select(argv: ["any"]).command == ["anywhere"])
        let production = try selection(metadata)
        do {
            _ = try production.select(argv: ["ci"])
            Issue.record("a test-only process was selected in production")
        } catch {
            #expect(error.message.contains("not eligible for execution environment production"))
            #expect(error.code == LaunchExit.failedLaunch)
        }
    }

    @Test func aProcessWithoutACommandIsAnError() throws {
        let s = try selection("[[processes]]\ntype = \"web\"\ncommand = []\n")
        #expect(throws: LaunchError.self) { try s.select(argv: ["web"]) }
    }
}
