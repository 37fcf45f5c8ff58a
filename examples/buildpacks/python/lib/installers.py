"""The installer an app's files call for, and how each fills the virtualenv.

Chosen by lock file first: uv.lock (uv), poetry.lock or `[tool.poetry]` (Poetry),
Pipfile.lock (pip from the lock), requirements.txt (pip), a pyproject.toml/setup.py package
(`pip install .`), PEP 621 `dependencies` of a project that is not a package (pip), else none
(a standard-library app). Dev dependencies are never installed: Poetry `--only main`, uv
`--no-dev`, Pipfile.lock's `default` section only.
"""
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

# Installer versions, pinned so builds are reproducible; an app may ask for others.
POETRY_VERSION = os.environ.get("BP_POETRY_VERSION", "2.5.1")
UV_VERSION = os.environ.get("BP_UV_VERSION", "0.13.9")


class BuildFailed(Exception):
    pass


def run(cmd, env=None, quiet=False):
    shown = " ".join(str(c) for c in cmd)
    print("---> " + shown.replace(os.environ.get("CNB_LAYERS_DIR", "\0"), "$LAYERS"), flush=True)
    result = subprocess.run([str(c) for c in cmd], env=env, stdout=subprocess.PIPE if quiet else None,
                            stderr=subprocess.STDOUT if quiet else None, text=True)
    if result.returncode != 0:
        if quiet and result.stdout:
            sys.stdout.write(result.stdout)
        raise BuildFailed("%s exited %d" % (cmd[0] if isinstance(cmd[0], str) else Path(cmd[0]).name, result.returncode))
    return result.stdout or ""


def toml(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def choose(app):
    """(installer, the files that decide what it installs)."""
    has = lambda name: (app / name).is_file()
    pyproject = toml(app / "pyproject.toml") if has("pyproject.toml") else {}
    if has("uv.lock"):
        return "uv", ["pyproject.toml", "uv.lock"]
    if has("poetry.lock") or "poetry" in pyproject.get("tool", {}):
        return "poetry", ["pyproject.toml", "poetry.lock"]
    if has("Pipfile.lock"):
        return "pipfile-lock", ["Pipfile.lock"]
    if has("Pipfile"):
        raise BuildFailed("Pipfile has no Pipfile.lock beside it: run `pipenv lock` and add Pipfile.lock to the app "
                          "(builds install from the lock file only, so that they are reproducible)")
    if has("requirements.txt"):
        return "pip-requirements", ["requirements.txt"]
    if "build-system" in pyproject or has("setup.py") or has("setup.cfg"):
        return "pip-package", ["pyproject.toml", "setup.py", "setup.cfg"]
    if pyproject.get("project", {}).get("dependencies"):
        return "pip-dependencies", ["pyproject.toml"]
    return "none", []


def make_venv(venv, with_pip, env):
    cmd = [sys.executable, "-m", "venv", venv] + ([] if with_pip else ["--without-pip"])
    run(cmd, env=env)


def tool(layers, name, version, env):
    """A cached, build-only layer with `name==version` installed from PyPI; its executable."""
    layer = layers / name
    exe = layer / "bin" / name
    meta = layers / (name + ".toml")
    if not (exe.exists() and meta.is_file() and ('version = "%s"' % version) in meta.read_text()):
        subprocess.run(["rm", "-rf", str(layer)], check=True)
        make_venv(layer, True, env)
        run([layer / "bin" / "pip", "install", "--disable-pip-version-check", "-q", "--cache-dir", layers / "pip-cache",
             "%s==%s" % (name, version)], env=env)
    else:
        print("---> Reusing %s %s (cached build-only layer)" % (name, version), flush=True)
    meta.write_text('[types]\ncache = true\n\n[metadata]\nversion = "%s"\n' % version)
    return exe


def pipfile_requirements(app, out):
    """Pipfile.lock's `default` packages as a hash-checked requirements file (what
    `pipenv requirements --hash` writes)."""
    try:
        lock = json.loads((app / "Pipfile.lock").read_text())
        packages = lock["default"]
    except (ValueError, KeyError) as e:
        raise BuildFailed("Pipfile.lock: not a Pipenv lock file (%s)" % e)
    lines = []
    for name, p in sorted(packages.items()):
        if "version" not in p or not p.get("hashes"):
            raise BuildFailed("Pipfile.lock: %s is not pinned with hashes (VCS and path entries are not supported)" % name)
        line = "%s%s" % (name, p["version"])
        if p.get("markers"):
            line += "; " + p["markers"]
        lines.append(line + "".join(" --hash=" + h for h in p["hashes"]))
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def install(kind, app, layers, venv, env):
    """Fills `venv` (fresh, or kept from the cache for installers that sync) for `kind`."""
    pip = [venv / "bin" / "pip", "install", "--disable-pip-version-check", "-q", "--cache-dir", layers / "pip-cache"]
    if kind == "pip-requirements":
        run(pip + ["-r", "requirements.txt"], env=env)
    elif kind == "pip-package":
        run(pip + ["."], env=env)
    elif kind == "pip-dependencies":
        deps = toml(app / "pyproject.toml")["project"]["dependencies"]
        run(pip + list(deps), env=env)
    elif kind == "pipfile-lock":
        reqs = layers / "pipfile-requirements.txt"
        count = pipfile_requirements(app, reqs)
        print("---> Pipfile.lock: %d packages of its default section" % count, flush=True)
        run(pip + ["--require-hashes", "--no-deps", "-r", reqs], env=env)
        reqs.unlink()
    elif kind == "poetry":
        poetry = tool(layers, "poetry", POETRY_VERSION, env)
        package_mode = toml(app / "pyproject.toml").get("tool", {}).get("poetry", {}).get("package-mode", True)
        if not (app / "poetry.lock").is_file():
            print("---> warning: no poetry.lock: Poetry resolves the dependencies afresh (not reproducible)", flush=True)
        penv = dict(env, VIRTUAL_ENV=str(venv), PATH="%s/bin:%s" % (venv, env["PATH"]), POETRY_NO_INTERACTION="1",
                    POETRY_VIRTUALENVS_CREATE="false", POETRY_CACHE_DIR=str(layers / "poetry-cache"))
        run([poetry, "sync", "--only", "main"] + ([] if package_mode else ["--no-root"]), env=penv)
        (layers / "poetry-cache.toml").write_text("[types]\ncache = true\n")
    elif kind == "uv":
        uv = tool(layers, "uv", UV_VERSION, env)
        uenv = dict(env, UV_PROJECT_ENVIRONMENT=str(venv), UV_CACHE_DIR=str(layers / "uv-cache"), UV_PYTHON=sys.executable,
                    UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="copy", UV_NO_PROGRESS="1")
        run([uv, "sync", "--frozen", "--no-dev"], env=uenv)
        (layers / "uv-cache.toml").write_text("[types]\ncache = true\n")
