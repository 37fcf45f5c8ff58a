#!/usr/bin/env python3
"""Describes the one image of an OCI layout as JSON, for the differential suite: its config (env as
a table, labels parsed when they hold JSON), and each layer's entries as Python's tarfile reads
them (name from the root, type, mode, owner, size, link target, content digest). Independent of
Cairn's own tar reader on purpose: the suite compares what other tools will see.

usage: describe_image.py LAYOUT_DIR
       describe_image.py --registry HOST/REPO:TAG   (plain HTTP, a loopback test registry)
"""
import hashlib
import json
import sys
import io
import tarfile
import tomllib
import urllib.request

TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
         tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def blob(layout, digest):
    algorithm, encoded = digest.split(":", 1)
    return f"{layout}/blobs/{algorithm}/{encoded}"


def load(layout, digest):
    with open(blob(layout, digest), "rb") as f:
        return json.load(f)


def normalized(name):
    while name.startswith("./") or name.startswith("/"):
        name = name[1:] if name.startswith("/") else name[2:]
    return name.rstrip("/") or "."


def layer_entries(data):
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar:
            entry = {"type": TYPES.get(member.type, "other"), "mode": oct(member.mode), "uid": member.uid, "gid": member.gid}
            if member.isfile():
                data = tar.extractfile(member).read()
                entry.update(content(member.name, data))
            if member.issym() or member.islnk():
                entry["link"] = normalized(member.linkname) if member.islnk() else member.linkname
            entries[normalized(member.name)] = entry
    return entries


def content(name, data):
    """TOML files parsed (two writers format the same table differently), small text as is,
    anything else by size and digest."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and name.endswith(".toml"):
        try:
            return {"toml": tomllib.loads(text)}
        except tomllib.TOMLDecodeError as e:
            return {"text": text, "invalid-toml": str(e)}
    if text is not None and len(data) <= 4096:
        return {"text": text}
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def label_value(text):
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (dict, list)) else text


def layer_roles(config):
    """Names for the layers by the lifecycle metadata label: run/<n> up to the run image's top
    layer, then launcher, config, process-types, sbom, slice/<n>, <buildpack>:<layer>; layers
    no label names keep their index. Two lifecycles may order or split their layers differently;
    compared by role, a difference says what differs."""
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    labels = (config.get("config") or {}).get("Labels") or {}
    try:
        meta = json.loads(labels.get("io.buildpacks.lifecycle.metadata", "{}"))
    except ValueError:
        meta = {}
    roles = {}
    top = (meta.get("runImage") or {}).get("topLayer")
    if top in diff_ids:
        for i in range(diff_ids.index(top) + 1):
            roles[i] = f"run/{i}"
    named = {}
    for key in ("launcher", "config", "process-types", "sbom"):
        sha = (meta.get(key) or {}).get("sha")
        if sha:
            named[sha] = key
    for n, entry in enumerate(meta.get("app") or []):
        named[entry.get("sha")] = f"slice/{n}"
    for bp in meta.get("buildpacks") or []:
        for layer, data in (bp.get("layers") or {}).items():
            named[data.get("sha")] = f"{bp.get('key')}:{layer}"
    for i, d in enumerate(diff_ids):
        if i not in roles:
            roles[i] = named.get(d, f"layer/{i}")
    return roles


def named_layers(source, manifest, config):
    roles = layer_roles(config)
    return {roles.get(i, f"layer/{i}"): layer_entries(source.blob(layer["digest"]))
            for i, layer in enumerate(manifest["layers"])}


class Layout:
    def __init__(self, path):
        self.path = path

    def manifest(self):
        with open(f"{self.path}/index.json") as f:
            index = json.load(f)
        return load(self.path, index["manifests"][0]["digest"])

    def blob(self, digest):
        with open(blob(self.path, digest), "rb") as f:
            return f.read()


class Registry:
    """Reads the image over the registry API itself: a manifest whose media types mix docker
    and OCI (which skopeo refuses) is described all the same."""
    ACCEPT = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])

    def __init__(self, ref):
        host, _, rest = ref.partition("/")
        self.repo, _, self.tag = rest.rpartition(":")
        self.base = f"http://{host}/v2/{self.repo}"

    def get(self, path, accept=None):
        request = urllib.request.Request(f"{self.base}/{path}", headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request) as response:
            return response.read()

    def manifest(self):
        return json.loads(self.get(f"manifests/{self.tag}", self.ACCEPT))

    def blob(self, digest):
        return self.get(f"blobs/{digest}")


def main(source):
    manifest = source.manifest()
    config = json.loads(source.blob(manifest["config"]["digest"]))
    inner = config.get("config", {})
    env = {}
    for item in inner.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    described = {
        "config": {
            "env": env,
            "entrypoint": inner.get("Entrypoint"),
            "cmd": inner.get("Cmd"),
            "user": inner.get("User"),
            "workingDir": inner.get("WorkingDir"),
            "labels": {k: label_value(v) for k, v in (inner.get("Labels") or {}).items()},
            "os": config.get("os"),
            "architecture": config.get("architecture"),
            "layerCount": len(manifest["layers"]),
            "mediaTypes": {"manifest": manifest.get("mediaType"), "config": manifest["config"].get("mediaType"),
                           "layers": sorted({layer.get("mediaType") for layer in manifest["layers"]})},
        },
        "layers": named_layers(source, manifest, config),
    }
    json.dump(described, sys.stdout, sort_keys=True, default=str)


if __name__ == "__main__":
    if sys.argv[1] == "--registry":
        main(Registry(sys.argv[2]))
    else:
        main(Layout(sys.argv[1]))
