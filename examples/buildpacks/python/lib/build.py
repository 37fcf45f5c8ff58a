"""The Python buildpack's build: check the Python version the app asks for, fill a virtualenv
launch layer with the installer its files call for (reused as restored while those files are
unchanged, so an unchanged rebuild runs no installer and needs no network), run Django's
collectstatic, write the processes and a CycloneDX SBOM of the installed distributions."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import installers  # noqa: E402
import launch  # noqa: E402
import pyversion  # noqa: E402

SBOM = r'''
import importlib.metadata as md, json
components = []
for d in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
    name, version = d.metadata["Name"], d.version
    components.append({"type": "library", "name": name, "version": version,
                       "purl": "pkg:pypi/%s@%s" % (name.lower().replace("_", "-"), version)})
print(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1, "components": components}))
'''


def distro():
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return fields.get("PRETTY_NAME", "").strip('"')
    except OSError:
        return ""


def key_of(kind, files, app):
    h = hashlib.sha256()
    h.update(("%s\n%s\n%s %s\n" % (sys.version, kind, installers.POETRY_VERSION, installers.UV_VERSION)).encode())
    for name in files:
        path = app / name
        h.update(("%s\n" % name).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def collectstatic(app, venv, env):
    """Django's `collectstatic` when manage.py is there, Django is installed and STATIC_ROOT set."""
    python = str(venv / "bin" / "python")
    if not (app / "manage.py").is_file() or env.get("DISABLE_COLLECTSTATIC", "") not in ("", "0"):
        return
    has_django = subprocess.run([python, "-c", "import django"], env=env, capture_output=True).returncode == 0
    if not has_django:
        return
    settings = installers.run([python, "manage.py", "diffsettings", "--all"], env=env, quiet=True)
    root = next((line.split("=", 1)[1].strip() for line in settings.splitlines() if line.startswith("STATIC_ROOT =")), "None")
    if root in ("None", "''", '""'):
        print("---> Django: STATIC_ROOT is not set, collectstatic skipped", flush=True)
        return
    out = installers.run([python, "manage.py", "collectstatic", "--noinput"], env=env, quiet=True)
    print("---> Django collectstatic: " + (out.strip().splitlines() or [""])[-1], flush=True)


def main():
    layers = Path(os.environ.get("CNB_LAYERS_DIR") or sys.argv[1])
    app = Path.cwd()
    venv = layers / "venv"
    # Reproducible bytecode: with SOURCE_DATE_EPOCH set, Python writes hash-checked .pyc files,
    # which stay valid when the layer comes back from the cache with normalized times.
    # Everything that writes into the venv (venv creation and its ensurepip too) runs so.
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "315532801"), PIP_NO_INPUT="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    print("---> Python buildpack: " + pyversion.check(app, sys.version_info[:3], distro()), flush=True)
    kind, files = installers.choose(app)
    key = key_of(kind, files, app)
    meta = layers / "venv.toml"
    if (venv / "bin" / "python").exists() and meta.is_file() and ('requirements = "%s"' % key) in meta.read_text():
        decided = ", ".join(f for f in files if (app / f).is_file())
        print("---> Reusing the virtualenv layer: " + (decided + " unchanged, no installer run" if decided else "nothing to install"), flush=True)
    else:
        syncs = kind in ("uv", "poetry") and (venv / "bin" / "python").exists() and meta.is_file() \
            and ('python = "%s"' % sys.version.split()[0]) in meta.read_text()
        if not syncs:
            shutil.rmtree(venv, ignore_errors=True)
            installers.make_venv(venv, kind.startswith("pip"), env)
        (layers / "pip-cache").mkdir(exist_ok=True)
        print("---> Installing with %s" % kind, flush=True)
        installers.install(kind, app, layers, venv, env)
    meta.write_text('[types]\nlaunch = true\ncache = true\n\n[metadata]\nrequirements = "%s"\npython = "%s"\ninstaller = "%s"\n'
                    % (key, sys.version.split()[0], kind))
    (layers / "pip-cache").mkdir(exist_ok=True)
    (layers / "pip-cache.toml").write_text("[types]\ncache = true\n")
    (venv / "env.launch").mkdir(exist_ok=True)
    # Written only when it differs: rewriting it would change the layer's files' times, and the
    # lifecycle would read the whole virtualenv again to learn that it did not change.
    unbuffered = venv / "env.launch" / "PYTHONUNBUFFERED.default"
    if not unbuffered.is_file() or unbuffered.read_text() != "1":
        unbuffered.write_text("1")

    # What only reads the venv and the app writes no bytecode: imports would leave
    # timestamp-based .pyc files in the app and the venv, and the next build a different layer.
    run_env = dict(env, PATH="%s/bin:%s" % (venv, env.get("PATH", "")), VIRTUAL_ENV=str(venv), PYTHONDONTWRITEBYTECODE="1")
    collectstatic(app, venv, run_env)
    sbom = subprocess.run([str(venv / "bin" / "python"), "-c", SBOM], env=run_env, capture_output=True, text=True, check=True)
    (layers / "venv.sbom.cdx.json").write_text(sbom.stdout)

    text, said = launch.launch_toml(app, venv)
    (layers / "launch.toml").write_text(text)
    print("---> Processes: " + said, flush=True)


if __name__ == "__main__":
    try:
        main()
    except (pyversion.Unsatisfied, installers.BuildFailed) as e:
        print("ERROR: %s" % e, file=sys.stderr, flush=True)
        sys.exit(1)
