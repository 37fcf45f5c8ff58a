import Buildpacks
import Foundation
import OCI
import Processes
import Sandbox

/// Classic (Cloud Foundry / Heroku, "v2") buildpacks — `bin/detect`, `bin/supply`,
/// `bin/finalize`, `bin/compile`, `bin/release`, no buildpack.toml — wrapped as CNB buildpacks
/// (Buildpack API 0.12) wherever a buildpack directory is accepted. The wrapper's `bin/detect`
/// and `bin/build` are shims that run the original (kept in `classic/`) as Cloud Foundry's
/// builder would: supply for each non-final classic buildpack of the group, then supply +
/// finalize (or compile) for the final one, then release. Mapping:
/// - `<build>` is the app directory; `<cache>` a cache layer; `<deps>/<index>` this buildpack's
///   `deps` layer (build + launch: its `bin`, `lib` and `env/` reach later buildpacks and the
///   app, its `profile.d/` is sourced at launch); `<deps>` itself is a `deps-index` layer of the
///   final buildpack holding a link per index, at the same path at build and launch time
///   (`DEPS_DIR`); Heroku's `<env-dir>` is the platform env directory.
/// - An `export` file left in the buildpack's directory becomes build env for later buildpacks;
///   `.profile.d/` scripts of the app and finalize's `<profile.d>` are sourced at launch.
/// - Release's `default_process_types` and the supply buildpacks' `<deps>/<index>/launch.yml`
///   processes become processes (`web` the default), a `Procfile` overrides them, `config_vars`
///   become launch env.
/// The group order decides which buildpack is final: the shims read `<layers>/group.toml`.
public enum ClassicBuildpack {
    /// A directory without buildpack.toml whose `bin/` has a classic entry point.
    public static func isClassic(_ dir: String) -> Bool {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: dir + "/buildpack.toml") else { return false }
        return ["compile", "supply", "finalize"].contains { fm.isExecutableFile(atPath: dir + "/bin/" + $0) }
    }

    /// A classic buildpack tarball (`.tgz`, `.tar.gz`, `.tar`) unpacked into `target`; the
    /// directory holding its `bin/` (the archive's root, or its one top directory). Nil when
    /// `path` is not such an archive.
    public static func unpackIfArchive(_ path: String, into target: String) throws -> String? {
        guard [".tgz", ".tar.gz", ".tar"].contains(where: { path.hasSuffix($0) }), !FS.isDirectory(path),
              FileManager.default.fileExists(atPath: path) else { return nil }
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        do { _ = try LayerExtractor.apply(blobPath: path, to: target, layerName: path) } catch {
            throw PlatformError.module(reference: path, reason: "cannot unpack the classic buildpack", cause: error)
        }
        if FS.isDirectory(target + "/bin") { return target }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
        if entries.count == 1, FS.isDirectory(target + "/" + entries[0] + "/bin") { return target + "/" + entries[0] }
        throw PlatformError.module(reference: path, reason: "no bin/ directory at the top of the archive (expected a classic buildpack)")
    }

    /// Writes the CNB buildpack wrapping the classic buildpack `dir` into `target`; returns its
    /// id and version and says where they came from.
    public static func wrap(_ dir: String, into target: String, log: (String) -> Void) throws -> (id: String, version: String) {
        let (name, nameSource) = identity(dir)
        let (version, versionSource) = versionOf(dir)
        let id = "classic/" + name
        log("Wrapping classic buildpack \(dir) as \(id)@\(version) (name from \(nameSource), version from \(versionSource))")
        let fm = FileManager.default
        try? fm.removeItem(atPath: target)
        try fm.createDirectory(atPath: target + "/bin", withIntermediateDirectories: true)
        try ChildProcess.tool("/bin/cp", ["-a", dir, target + "/classic"], what: "copying classic buildpack \(dir)")
        try """
            # A classic buildpack wrapped by Cairn's shim; the original is in classic/.
            api = "0.12"

            [buildpack]
            id = "\(id)"
            version = "\(version)"
            name = "\(name) (classic buildpack)"

            [[targets]]
            os = "linux"

            """.write(toFile: target + "/buildpack.toml", atomically: true, encoding: .utf8)
        for (file, text) in [("detect", detectShim), ("build", buildShim)] {
            try text.replacingOccurrences(of: "@ID@", with: id).write(toFile: target + "/bin/" + file, atomically: true, encoding: .utf8)
            try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: target + "/bin/" + file)
        }
        return (id, version)
    }

    /// The name: manifest.yml's `language`, else its `name`, else the directory's name.
    static func identity(_ dir: String) -> (String, String) {
        let manifest = (try? String(contentsOfFile: dir + "/manifest.yml", encoding: .utf8)) ?? ""
        for key in ["language", "name"] {
            if let v = topLevelYAML(manifest, key), let clean = sanitized(v) { return (clean, "manifest.yml \(key)") }
        }
        return (sanitized(URL(fileURLWithPath: dir).standardizedFileURL.lastPathComponent) ?? "buildpack", "the directory name")
    }

    /// The version: the VERSION file, else manifest.yml's `version`, else 0.0.0.
    static func versionOf(_ dir: String) -> (String, String) {
        if let v = try? String(contentsOfFile: dir + "/VERSION", encoding: .utf8), let clean = versionText(v) { return (clean, "VERSION") }
        let manifest = (try? String(contentsOfFile: dir + "/manifest.yml", encoding: .utf8)) ?? ""
        if let v = topLevelYAML(manifest, "version"), let clean = versionText(v) { return (clean, "manifest.yml version") }
        return ("0.0.0", "the default (no VERSION file or manifest.yml version)")
    }

    static func topLevelYAML(_ text: String, _ key: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let value = line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            return value.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return nil
    }

    static func sanitized(_ s: String) -> String? {
        let out = String(s.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" ? $0 : "-" })
        return out.isEmpty ? nil : out
    }

    static func versionText(_ s: String) -> String? {
        let v = s.trimmingCharacters(in: .whitespacesAndNewlines)
        return v.isEmpty || v.contains(where: { $0 == "\"" || $0 == "\n" || $0 == "\\" }) ? nil : v
    }

    static let detectShim = #"""
        #!/usr/bin/env bash
        # Cairn's shim: the classic buildpack's bin/detect <build-dir>; exit 0 passes, anything else fails.
        bp="$CNB_BUILDPACK_DIR/classic"
        [ -x "$bp/bin/detect" ] || exit 0   # supply-only buildpacks have no detect
        if out=$("$bp/bin/detect" "$PWD"); then
          # The detected name rides in the plan (provided and required by this buildpack) to the build.
          name=$(printf '%s' "${out:-detected}" | head -n1 | tr -d '"\\')
          entry="classic-detected-$(printf '%s' "@ID@" | tr '/' '-')"
          printf '[[provides]]\nname = "%s"\n\n[[requires]]\nname = "%s"\n\n[requires.metadata]\ndetected = "%s"\n' \
            "$entry" "$entry" "$name" > "${CNB_BUILD_PLAN_PATH:-$2}"
          exit 0
        fi
        exit 100

        """#

    static let buildShim = #"""
        #!/usr/bin/env bash
        # Cairn's shim: runs the classic buildpack in classic/ as Cloud Foundry's builder does
        # (supply; or supply + finalize / compile when it is the group's last classic buildpack;
        # then release), mapping its directories to CNB layers. See ClassicBuildpack.swift.
        set -eo pipefail
        bp_id="@ID@"
        layers=${1:-$CNB_LAYERS_DIR}
        platform=${2:-$CNB_PLATFORM_DIR}
        app=$PWD
        root=$(dirname "$layers")

        # This buildpack's index among the group's classic buildpacks, and the last index.
        ids=()
        if [ -f "$root/group.toml" ]; then
          while IFS= read -r id; do ids+=("$id"); done < <(sed -n 's/^[[:space:]]*id = "\(classic\/[^"]*\)".*/\1/p' "$root/group.toml")
        fi
        [ ${#ids[@]} -gt 0 ] || ids=("$bp_id")
        index=0
        for i in "${!ids[@]}"; do [ "${ids[$i]}" = "$bp_id" ] && index=$i; done
        last=$(( ${#ids[@]} - 1 ))

        # <deps> is the final buildpack's deps-index layer: a link per index, the same path at build and launch.
        deps_dir="$root/$(printf '%s' "${ids[$last]}" | tr '/' '_')/deps-index"
        mkdir -p "$deps_dir" "$layers/deps/env" "$layers/cache"
        ln -sfn "$layers/deps" "$deps_dir/$index"
        export DEPS_DIR="$deps_dir"
        printf '[types]\nbuild = true\nlaunch = true\n' > "$layers/deps.toml"
        printf '[types]\ncache = true\n' > "$layers/cache.toml"

        detected=$(sed -n 's/^[[:space:]]*detected = "\(.*\)"$/\1/p' "${3:-$CNB_BP_PLAN_PATH}" 2>/dev/null | head -n1)
        [ -z "$detected" ] || echo "---> $bp_id detected: $detected"

        # A writable copy: classic buildpacks may write into their own directory (an export file).
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        cp -a "$CNB_BUILDPACK_DIR/classic/." "$work/"

        if [ "$index" -lt "$last" ]; then
          [ -x "$work/bin/supply" ] || { echo "$bp_id: not the last classic buildpack, and it has no bin/supply" >&2; exit 1; }
          echo "---> $bp_id: supply (index $index)"
          "$work/bin/supply" "$app" "$layers/cache" "$deps_dir" "$index"
        else
          mkdir -p "$layers/profile/profile.d"
          if [ -x "$work/bin/finalize" ]; then
            if [ -x "$work/bin/supply" ]; then
              echo "---> $bp_id: supply (index $index)"
              "$work/bin/supply" "$app" "$layers/cache" "$deps_dir" "$index"
            fi
            echo "---> $bp_id: finalize"
            "$work/bin/finalize" "$app" "$layers/cache" "$deps_dir" "$index" "$layers/profile/profile.d"
          elif [ -x "$work/bin/compile" ]; then
            echo "---> $bp_id: compile"
            "$work/bin/compile" "$app" "$layers/cache" "$platform/env"
          else
            echo "$bp_id: the last classic buildpack needs bin/finalize or bin/compile" >&2
            exit 1
          fi
          printf '[types]\nlaunch = true\n' > "$layers/deps-index.toml"
          mkdir -p "$layers/deps/env.launch"
          printf '%s' "$deps_dir" > "$layers/deps/env.launch/DEPS_DIR.override"
          # The app's .profile.d scripts are sourced at launch, after the buildpacks'.
          if [ -d "$app/.profile.d" ]; then
            for f in "$app"/.profile.d/*; do [ -f "$f" ] && cp "$f" "$layers/profile/profile.d/zz-app-$(basename "$f")"; done
          fi
          printf '[types]\nlaunch = true\n' > "$layers/profile.toml"
        fi

        # An export file: its variables are build env for the buildpacks after this one.
        if [ -f "$work/export" ]; then
          mkdir -p "$layers/deps/env.build"
          while IFS= read -r -d '' kv; do
            name=${kv%%=*}
            [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
            [ "${!name-__unset__}" = "${kv#*=}" ] && continue
            printf '%s' "${kv#*=}" > "$layers/deps/env.build/$name.override"
          done < <(bash -c 'source "$1" >/dev/null 2>&1; env -0' _ "$work/export")
        fi

        [ "$index" -eq "$last" ] || exit 0

        # Release: default_process_types (a Procfile overrides them) and config_vars.
        release=""
        [ -x "$work/bin/release" ] && release=$("$work/bin/release" "$app")
        toml_string() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
        declare -A processes=()
        section=""
        while IFS= read -r line; do
          case "$line" in
            default_process_types:*) section=processes ;;
            config_vars:*) section=vars ;;
            "  "*:*)
              key=$(printf '%s' "$line" | sed 's/^ *\([^:]*\):.*/\1/')
              value=$(printf '%s' "$line" | sed 's/^ *[^:]*:[[:space:]]*//; s/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/')
              if [ "$section" = processes ]; then processes[$key]=$value
              elif [ "$section" = vars ]; then mkdir -p "$layers/deps/env.launch"; printf '%s' "$value" > "$layers/deps/env.launch/$key.override"
              fi ;;
            *) section="" ;;
          esac
        done <<< "$release"
        # Supply buildpacks' <deps>/<index>/launch.yml processes (Cloud Foundry v3), in index order.
        for launch in "$deps_dir"/*/launch.yml; do
          [ -f "$launch" ] || continue
          type=""
          while IFS= read -r line; do
            case "$line" in
              *type:*) type=$(printf '%s' "$line" | sed 's/^[-[:space:]]*type:[[:space:]]*//; s/^"\(.*\)"$/\1/') ;;
              *command:*)
                command=$(printf '%s' "$line" | sed 's/^[-[:space:]]*command:[[:space:]]*//; s/^"\(.*\)"$/\1/')
                [ -n "$type" ] && processes[$type]=$command ;;
            esac
          done < "$launch"
        done
        if [ -f "$app/Procfile" ]; then
          while IFS= read -r line; do
            [[ "$line" =~ ^([A-Za-z0-9_-]+):[[:space:]]*(.+)$ ]] && processes[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
          done < "$app/Procfile"
        fi
        # Processes run through bash with the profile scripts sourced first, as Cloud Foundry
        # does: every buildpack's <deps>/<index>/profile.d/*.sh, then finalize's and the app's.
        prelude='for f in "$DEPS_DIR"/*/profile.d/*.sh '"$layers"'/profile/profile.d/*; do [ -f "$f" ] && . "$f"; done; '
        : > "$layers/launch.toml"
        for type in "${!processes[@]}"; do
          {
            echo "[[processes]]"
            echo "type = $(toml_string "$type")"
            echo "command = [\"bash\", \"-c\", $(toml_string "$prelude${processes[$type]}")]"
            [ "$type" = web ] && echo "default = true"
            echo
          } >> "$layers/launch.toml"
        done

        """#
}
