"""The installer an app's files call for, and how each fills the virtualenv.

Chosen by lock file first: uv.lock (uv), poetry.lock or `[tool.poetry]` (Poetry),
Pipfile.lock (pip from the lock, after checking its `_meta` hash against the Pipfile as
`pipenv install --deploy` does), a Pipfile alone (locked at build by pipenv, then as with a lock),
requirements.txt (pip), a pyproject.toml/setup.py package
(`pip install .`), PEP 621 `dependencies` of a project that is not a package (pip), else none
(a standard-library app). Dev dependencies are never installed: Poetry `--only main`, uv
`--no-dev`, Pipfile.lock's `default` section only.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

# Installer versions, pinned so builds are reproducible; an app may ask for others.
POETRY_VERSION = os.environ.get("BP_POETRY_VERSION", "2.5.1")
UV_VERSION = os.environ.get("BP_UV_VERSION", "0.13.9")
PIPENV_VERSION = os.environ.get("BP_PIPENV_VERSION", "2026.10.3")


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
        return "pipfile-lock", ["Pipfile", "Pipfile.lock"]
    if has("Pipfile"):
        return "pipenv-lock", ["Pipfile"]
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


# What plette (Pipenv's Pipfile model) puts in a Pipfile without a [[source]].
DEFAULT_SOURCES = [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}]
PIPFILE_SECTIONS = ("source", "packages", "dev-packages", "requires", "scripts", "pipfile", "pipenv")


def pipfile_hashes(pipfile):
    """The `_meta.hash.sha256` values a Pipfile.lock made from `pipfile` may carry: the one
    Pipenv computes since 2026 (package names in PEP 503 form) and the one older Pipenv (plette's
    `get_hash`) wrote with the names as spelled. sha256 of the sorted, compact JSON of the
    sources, requires and package sections."""
    raw = toml(pipfile)
    canonical = lambda section: {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in section.items()}
    hashes = []
    for names in (canonical, lambda section: dict(section)):
        data = {"_meta": {"sources": raw.get("source", DEFAULT_SOURCES), "requires": raw.get("requires", {})},
                "default": names(raw.get("packages", {})), "develop": names(raw.get("dev-packages", {}))}
        for category, values in raw.items():
            if category not in PIPFILE_SECTIONS and category not in ("default", "develop"):
                data[category] = names(values)
        content = json.dumps(data, sort_keys=True, separators=(",", ":"))
        hashes.append(hashlib.sha256(content.encode("utf-8")).hexdigest())
    return hashes


def read_lock(app):
    """Pipfile.lock, refused when it was not made from the Pipfile beside it."""
    try:
        lock = json.loads((app / "Pipfile.lock").read_text())
        packages, recorded = lock["default"], lock["_meta"]["hash"]["sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise BuildFailed("Pipfile.lock: not a Pipenv lock file (%s missing or malformed)" % e)
    if (app / "Pipfile").is_file():
        expected = pipfile_hashes(app / "Pipfile")
        if recorded not in expected:
            raise BuildFailed("Pipfile.lock (%s) is out of date: the Pipfile's hash is %s. Run `pipenv lock` and add "
                              "the new Pipfile.lock to the app (`pipenv install --deploy` refuses it too)"
                              % (recorded[-6:], expected[0][-6:]))
    return packages


def pipenv_lock(app, layers, env):
    """Locks the Pipfile with pipenv (installed into a cached build-only layer) in a scratch
    directory, so the app keeps its files; returns the directory holding Pipfile.lock."""
    pipenv = tool(layers, "pipenv", PIPENV_VERSION, env)
    print("---> warning: no Pipfile.lock: pipenv resolves the Pipfile afresh (not reproducible; "
          "add Pipfile.lock to the app)", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="pipenv-lock-"))
    shutil.copy(app / "Pipfile", scratch / "Pipfile")
    penv = dict(env, PIPENV_PIPFILE=str(scratch / "Pipfile"), WORKON_HOME=str(scratch / "venvs"), PIPENV_NOSPIN="1",
                PIPENV_YES="1", PIPENV_PYTHON=sys.executable, PIPENV_CACHE_DIR=str(layers / "pip-cache"))
    penv.pop("VIRTUAL_ENV", None)
    run([pipenv, "lock"], env=penv, quiet=True)
    return scratch


def pipfile_requirements(app, out):
    """Pipfile.lock's `default` packages as a hash-checked requirements file (what
    `pipenv requirements --hash` writes)."""
    packages = read_lock(app)
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
    elif kind in ("pipfile-lock", "pipenv-lock"):
        locked = pipenv_lock(app, layers, env) if kind == "pipenv-lock" else app
        reqs = layers / "pipfile-requirements.txt"
        count = pipfile_requirements(locked, reqs)
        print("---> Pipfile.lock: %d packages of its default section" % count, flush=True)
        run(pip + ["--require-hashes", "--no-deps", "-r", reqs], env=env)
        reqs.unlink()
        if locked != app:
            shutil.rmtree(locked, ignore_errors=True)
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
