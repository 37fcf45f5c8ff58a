@testable import CairnPlatform
import Foundation
import OCI
import Testing
import TestSupport

/// The kept workspace (issue 42): after every sync it is what `cp -a` of the app makes, whatever
/// changed in the app or was left in the workspace by a build; unchanged files keep their inodes.
struct WorkspaceSyncTests {
    let tmp = TempDir("workspace-sync")
    var app: String { tmp.path + "/app" }
    var workspace: String { tmp.path + "/kept/app" }

    /// Every entry under `root`: path, type, permissions, size, mtime (ns, files), link target,
    /// content digest, and which hard-link group it is in (by first path) — what cp -a keeps.
    func tree(_ root: String) throws -> String {
        let r = try sh("""
            python3 - '\(root)' <<'PY'
            import hashlib, os, stat, sys
            root = sys.argv[1]; first = {}
            for d, dirs, files in sorted(os.walk(root)):
                dirs.sort()
                for n in sorted(dirs + files):
                    p = os.path.join(d, n); st = os.lstat(p); rel = os.path.relpath(p, root)
                    line = [rel, oct(st.st_mode)]
                    if stat.S_ISREG(st.st_mode):
                        line += [str(st.st_size), str(st.st_mtime_ns), hashlib.sha256(open(p, "rb").read()).hexdigest()]
                        if st.st_nlink > 1: line.append("link-group " + first.setdefault(st.st_ino, rel))
                    elif stat.S_ISLNK(st.st_mode):
                        line.append("-> " + os.readlink(p))
                    print(" ".join(line))
            PY
            """)
        try #require(r.status == 0, "\(r.stderr)")
        return r.stdout
    }

    func sync(excluded: Set<String> = []) throws -> WorkspaceSync.Counts {
        try WorkspaceSync(app: app, workspace: workspace, statePath: tmp.path + "/kept/state.json", owner: nil, excluded: excluded).run()
    }

    func inode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? Int) ?? 0
    }

    func makeApp() throws {
        try writeFile(app + "/Procfile", "web: ./serve\n")
        try writeFile(app + "/serve", "#!/bin/sh\necho hi\n", mode: 0o755)
        try writeFile(app + "/src/main.txt", "main\n")
        try writeFile(app + "/src/deep/er/data.bin", String(repeating: "x", count: 100_000))
        try writeFile(app + "/node_modules/big/index.js", "module.exports = 1\n")
        _ = try sh("cd '\(app)' && ln -s src/main.txt link && ln src/main.txt hard && chmod 0700 src/deep && mkdir empty")
    }

    @Test func theWorkspaceIsWhatCpMakesAfterEveryKindOfChange() throws {
        try makeApp()
        let first = try sync()
        #expect(first.copied == 7 && first.kept == 0, "\(first)")
        let reference = tmp.path + "/cp"
        func expectLikeCp(_ what: String) throws {
            _ = try sh("rm -rf '\(reference)' && cp -a '\(app)' '\(reference)'")
            #expect(try tree(workspace) == tree(reference), "\(what): the workspace differs from cp -a of the app")
        }
        try expectLikeCp("first sync")

        // Nothing changed: nothing copied, the same inodes.
        let before = inode(workspace + "/src/deep/er/data.bin")
        let again = try sync()
        #expect(again.copied == 0 && again.removed == 0 && again.kept == 7, "\(again)")
        #expect(inode(workspace + "/src/deep/er/data.bin") == before)

        // The app changes: an edit that keeps size and mtime (only ctime tells), a new file, a
        // removed one, a file that becomes a directory, a mode, a retargeted link.
        _ = try sh("""
            cd '\(app)' && printf 'MAIN\\n' > src/main.2 && touch -r src/main.txt src/main.2 && cat src/main.2 > src/main.txt \
            && touch -r src/main.2 src/main.txt && rm src/main.2 && echo new > src/new.txt && rm Procfile && mkdir Procfile \
            && echo x > Procfile/inner && chmod 0600 serve && rm link && ln -s serve link
            """)
        _ = try sync()
        try expectLikeCp("after the app changed")
        #expect(try String(contentsOfFile: workspace + "/src/main.txt", encoding: .utf8) == "MAIN\n")

        // A build wrote into the workspace: its files go, its edits are undone.
        _ = try sh("""
            cd '\(workspace)' && echo built > output.o && mkdir -p target/x && echo y > target/x/y \
            && printf 'ZZZZ\\n' > src/main.txt && chmod 0777 src
            """)
        let undone = try sync()
        #expect(undone.removed >= 2, "\(undone)")
        try expectLikeCp("after a build wrote into the workspace")
    }

    @Test func excludedPathsStayOutAndALostRecordMeansAFullCopy() throws {
        try makeApp()
        _ = try sync(excluded: ["node_modules"])
        #expect(!FileManager.default.fileExists(atPath: workspace + "/node_modules"))
        #expect(FileManager.default.fileExists(atPath: workspace + "/src/main.txt"))
        // Excluded later: what was synced before goes.
        _ = try sync(excluded: ["src/deep"])
        #expect(!FileManager.default.fileExists(atPath: workspace + "/src/deep"))
        #expect(FileManager.default.fileExists(atPath: workspace + "/node_modules/big/index.js"))

        // A record that cannot be read (a crash while it was replaced cannot leave one, but a
        // disk can): every file is copied again, and the result is still the app.
        try "{not json".write(toFile: tmp.path + "/kept/state.json", atomically: true, encoding: .utf8)
        let full = try sync()
        #expect(full.kept == 0 && full.copied == 7, "\(full)")
        _ = try sh("rm -rf '\(tmp.path)/cp' && cp -a '\(app)' '\(tmp.path)/cp'")
        #expect(try tree(workspace) == tree(tmp.path + "/cp"))
    }

    @Test func anEntryTheSyncCannotCopyIsRefusedForAFreshCopy() throws {
        try makeApp()
        _ = try sh("mkfifo '\(app)/pipe'")
        #expect(throws: WorkspaceSync.Unsupported.self) { try sync() }
    }

    /// End to end: a rebuild of an unchanged app copies nothing and reuses the app layer without
    /// reading it; an edit that keeps the file's size and mtime still reaches the image.
    @Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
    func rebuildsCopyNothingAndStillSeeEveryEdit() throws {
        let home = tmp.path + "/home"
        try ExampleBuilder.make(home: home)
        try writeFile(app + "/Procfile", "web: cat hello.txt\n")
        try writeFile(app + "/hello.txt", "one\n")
        // A large file (over CAIRN_LARGE_FILE_LAYER_MB) gets a layer of its own.
        _ = try sh("head -c 2000000 /dev/urandom > '\(app)/model.bin'")
        func build(trace: Bool = false) throws -> String {
            let r = try run([cairnBinary, "build", "kept", "--path", app, "--builder", ExampleBuilder.name], environment: [
                "CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin, "CAIRN_LARGE_FILE_LAYER_MB": "1", "CAIRN_TRACE": trace ? "1" : "",
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
            ])
            try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
            return r.stdout + r.stderr
        }
        func imageFile() throws -> String {
            let stored = try ImageStore(root: home + "/store").resolve("kept")
            let label = try #require(stored.config.config?.labels?["io.buildpacks.lifecycle.metadata"])
            let metadata = try JSONSerialization.jsonObject(with: Data(label.utf8)) as! [String: Any]
            let layers = metadata["app"] as? [[String: Any]] ?? []
            #expect(layers.count == 2, "model.bin in its own layer, then the rest: \(layers)")
            let sha = try #require(layers.last?["sha"] as? String)
            let diffID = try #require(Digest(sha))
            let layer = try #require(stored.layer(diffID: diffID))
            return try sh("tar -xzOf '\(home)/store/blobs/sha256/\(layer.descriptor.digest.encoded)' workspace/hello.txt").stdout
        }
        let first = try build()
        #expect(first.contains("3 copied, 0 unchanged"), "\(first)")
        let second = try build(trace: true)
        #expect(second.contains("0 copied, 3 unchanged, 0 removed"), "\(second)")
        // The traced build's breakdown: cairn's steps and each phase inside the creator.
        for step in ["build: workspace", "build: creator", "lifecycle: analyze", "lifecycle: detect", "lifecycle: restore",
                     "lifecycle: build", "lifecycle: export"] {
            #expect(second.contains("[trace] \(step) "), "no \(step) in the trace: \(second)")
        }
        #expect(!first.contains("[trace]"), "\(first)")
        for layer in ["slice-1", "app"] {
            #expect(second.contains("Reusing layer '\(layer)' with SHA") && second.contains("(unchanged since the last export)"),
                    "the \(layer) layer was read again: \(second)")
        }
        // Same size, same mtime: only the ctime says the file changed.
        _ = try sh("cd '\(app)' && cp -p hello.txt old && printf 'two\\n' > hello.txt && touch -r old hello.txt && rm old")
        let third = try build()
        #expect(third.contains("1 copied, 2 unchanged"), "\(third)")
        #expect(third.contains("Reusing layer 'slice-1'") && third.contains("Adding layer 'app'"), "\(third)")
        #expect(try imageFile() == "two\n")

        // prune keeps the workspace while the image is in the store, removes it after.
        #expect(try cairnAt(["prune"], home: home).status == 0)
        #expect(FileManager.default.fileExists(atPath: home + "/workspaces/kept/app/hello.txt"))
        #expect(try cairnAt(["rmi", "kept"], home: home).status == 0)
        let pruned = try cairnAt(["prune"], home: home)
        #expect(pruned.status == 0 && !FileManager.default.fileExists(atPath: home + "/workspaces/kept"), "\(pruned.stdout)\(pruned.stderr)")
    }
}
