import Buildpacks
import Extend
import Foundation
import OCI
import Sandbox
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The tiny stack's run image copied into a fresh store, unpacked beside it.
struct ExtendFixture {
    let dir: TempDir
    let store: ImageStore
    let base: StoredImage
    let baseRoot: String

    init() throws {
        let stack = try TinyStack.shared()
        dir = TempDir()
        let source = try ImageStore(root: stack.store)
        store = try ImageStore(root: dir.sub("store"))
        let run = try source.resolve(TinyStack.runImage)
        for d in [run.descriptor.digest, run.manifest.config.digest] + run.manifest.layers.map(\.digest) {
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: store.blobPath(d)).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: source.blobPath(d), toPath: store.blobPath(d))
        }
        try store.beginWriteSession().tag(run.descriptor, as: TinyStack.runImage)
        base = try store.resolve(TinyStack.runImage)
        baseRoot = dir.sub("base")
        try unpack(base, in: store, to: baseRoot)
    }

    /// Writes a Dockerfile (and context files) for extension `id`.
    func dockerfile(_ id: String, _ text: String, kind: String = "run", context: [String: String] = [:]) throws -> ExtensionDockerfile {
        let out = dir.sub("generated/\(id)")
        try writeFile(out + "/\(kind).Dockerfile", text)
        for (name, contents) in context { try writeFile(out + "/context/" + name, contents) }
        return ExtensionDockerfile(extensionID: id, path: out + "/\(kind).Dockerfile", contextDirectory: out + "/context")
    }

    func extender(_ name: String = "x") -> ImageExtender {
        ImageExtender(store: store, scratch: dir.sub("scratch-" + name), layerOptions: LayerWriteOptions(), log: { _ in })
    }

    func extend(_ dockerfiles: [ExtensionDockerfile], kind: ExtendKind = .run) throws -> ExtendedImage {
        try extender().extend(base: base, baseRoot: baseRoot, baseName: TinyStack.runImage, dockerfiles: dockerfiles, kind: kind,
                              reference: "extended:latest")
    }
}

func unpack(_ image: StoredImage, in store: ImageStore, to root: String) throws {
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    for layer in image.manifest.layers {
        _ = try LayerExtractor.apply(blobPath: store.blobPath(layer.digest), to: root, layerName: layer.digest.short)
    }
}

/// `tar -t` of a layer blob.
func entries(_ store: ImageStore, _ layer: LayerResult) throws -> [String] {
    let r = try run(["tar", "-tzf", store.blobPath(layer.digest)])
    guard r.status == 0 else { throw TestSupportError("tar -t failed: \(r.stderr)") }
    return r.stdout.split(separator: "\n").map(String.init)
}

let extendNeedsRoot = geteuid() == 0 && toolAvailable("runc")

@Suite(.enabled(if: extendNeedsRoot, "applying Dockerfiles needs root and runc"))
struct ExtendTests {
    @Test func runAddingAFileAndAUserGivesALayerTheImageRunsWith() throws {
        let f = try ExtendFixture()
        let d = try f.dockerfile("example/hello", """
            ARG base_image
            FROM ${base_image}
            ARG user_id
            ARG greeting=hello
            USER root
            RUN echo "$greeting from RUN" > /hello.txt && echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd
            ENV GREETING=${greeting}
            LABEL io.buildpacks.rebasable=true
            USER ${user_id}
            """)
        let extended = try f.extend([d])
        #expect(extended.newLayers.count == 1)
        #expect(extended.rebasable)
        let config = try #require(extended.image.config.config)
        #expect(config.env?.contains("GREETING=hello") == true)
        #expect(config.labels?[CNBLabel.rebasable] == "true")
        #expect(config.user == "1001", "USER ${user_id}: the run image's own user")
        let history = extended.image.config.history ?? []
        #expect(history.contains { $0.createdBy?.hasPrefix("Layer: 'RUN echo") == true && $0.createdBy?.hasSuffix("Created by extension: example/hello") == true })
        #expect(history.contains { $0.createdBy == "Layer: 'ENV GREETING=${greeting}', Created by extension: example/hello" && $0.emptyLayer == true })
        let layerEntries = try entries(f.store, extended.newLayers[0])
        #expect(layerEntries.contains("hello.txt"))
        #expect(layerEntries.contains("etc/passwd"))

        // The image runs under runc and sees what RUN made.
        let root = f.dir.sub("rootfs")
        try unpack(extended.image, in: f.store, to: root)
        let bundle = RuncBundle(directory: f.dir.sub("bundle"), rootfs: root,
                                process: ContainerProcess(args: ["/bin/sh", "-c", "cat /hello.txt; grep '^app:' /etc/passwd; id -u"],
                                                          env: config.env ?? [], cwd: "/", uid: 1000, gid: 1000))
        try bundle.write()
        let r = try run(["runc", "run", "--bundle", bundle.directory, "cairn-extend-test-\(getpid())"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("hello from RUN"))
        #expect(r.stdout.contains("app:x:1234:1234"))
    }

    @Test func aRunDeletingAFileGivesAWhiteoutAndTheFileIsGone() throws {
        let f = try ExtendFixture()
        #expect(FileManager.default.fileExists(atPath: f.baseRoot + "/etc/group"))
        let d = try f.dockerfile("example/delete", """
            ARG base_image
            FROM ${base_image}
            USER 0
            RUN rm /etc/group && rm -rf /home && mkdir -p /home/fresh
            USER 1000:1000
            """)
        let extended = try f.extend([d])
        let layerEntries = try entries(f.store, extended.newLayers[0])
        #expect(layerEntries.contains("etc/.wh.group"))
        #expect(layerEntries.contains("home/.wh..wh..opq"))
        #expect(!extended.rebasable, "the Dockerfile did not declare its layers rebasable")
        #expect(extended.image.config.config?.labels?[CNBLabel.rebasable] == "false")
        let root = f.dir.sub("rootfs")
        try unpack(extended.image, in: f.store, to: root)
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/group"))
        #expect(FileManager.default.fileExists(atPath: root + "/home/fresh"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: root + "/home")) ?? []) == ["fresh"])
    }

    @Test func copyFromTheContextWithChownAndChmod() throws {
        let f = try ExtendFixture()
        let d = try f.dockerfile("example/copy", """
            ARG base_image
            FROM ${base_image}
            WORKDIR /opt/tool
            COPY --chown=1000:1000 --chmod=755 run.sh ./
            COPY conf/ /etc/tool/
            USER 1000:1000
            """, context: ["run.sh": "#!/bin/sh\necho tool\n", "conf/a.conf": "a=1\n"])
        let extended = try f.extend([d])
        let root = f.dir.sub("rootfs")
        try unpack(extended.image, in: f.store, to: root)
        var st = stat()
        #expect(stat(root + "/opt/tool/run.sh", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o755)
        #expect(st.st_uid == 1000)
        #expect(FileManager.default.fileExists(atPath: root + "/etc/tool/a.conf"))
        #expect(extended.image.config.config?.workingDir == "/opt/tool")
    }

    @Test func aForbiddenInstructionIsAnErrorWithFileAndLine() throws {
        let f = try ExtendFixture()
        let d = try f.dockerfile("example/bad", """
            ARG base_image
            FROM ${base_image}
            RUN touch /should-not-run
            EXPOSE 8080
            """)
        #expect {
            try f.extend([d])
        } throws: { error in
            let text = "\(error)"
            return text.contains(d.path + ":4: EXPOSE") && text.contains("not allowed")
        }
        #expect((try? f.store.resolve("extended:latest")) == nil)
    }

    @Test func aRunImageLeftAsRootIsRefused() throws {
        let f = try ExtendFixture()
        let d = try f.dockerfile("example/root", """
            ARG base_image
            FROM ${base_image}
            USER root
            RUN true
            """)
        #expect {
            try f.extend([d])
        } throws: { "\($0)".contains("user is root") }
    }

    @Test func aFailingRunNamesTheFileLineAndStatus() throws {
        let f = try ExtendFixture()
        let d = try f.dockerfile("example/fail", """
            ARG base_image
            FROM ${base_image}
            USER root
            RUN exit 3
            """)
        #expect {
            try f.extend([d])
        } throws: { "\($0)" == "\(d.path):4: RUN exit 3 exited with status 3" }
    }

    @Test func theSameDockerfileAppliedTwiceGivesTheSameLayers() throws {
        let text = """
            ARG base_image
            FROM ${base_image}
            ARG build_id=0
            USER root
            RUN mkdir -p /data && for i in 1 2 3; do echo $i > /data/$i; done && rm /etc/group
            COPY notes.txt /data/
            USER 1000:1000
            """
        var digests: [[Digest]] = []
        for _ in 0..<2 {
            let f = try ExtendFixture()
            let d = try f.dockerfile("example/same", text, context: ["notes.txt": "the same bytes\n"])
            let extended = try f.extend([d])
            digests.append(extended.newLayers.map(\.digest))
            #expect(extended.newLayers.count == 2)
        }
        #expect(digests[0] == digests[1])
    }

    @Test func laterDockerfilesExtendTheEarlierOnesResult() throws {
        let f = try ExtendFixture()
        let first = try f.dockerfile("example/one", """
            ARG base_image
            FROM ${base_image}
            USER root
            RUN echo one > /one
            LABEL io.buildpacks.rebasable=true
            USER 1000:1000
            """)
        let second = try f.dockerfile("example/two", """
            ARG base_image
            FROM ${base_image}
            ARG user_id
            ARG group_id
            USER root
            RUN cat /one > /two && echo "$user_id:$group_id" >> /two
            LABEL io.buildpacks.rebasable=true
            USER ${user_id}:${group_id}
            """)
        let extended = try f.extend([first, second])
        #expect(extended.rebasable)
        #expect(extended.image.config.config?.user == "1000:1000")
        let root = f.dir.sub("rootfs")
        try unpack(extended.image, in: f.store, to: root)
        #expect(try String(contentsOfFile: root + "/two", encoding: .utf8) == "one\n1000:1000\n")
    }
}
