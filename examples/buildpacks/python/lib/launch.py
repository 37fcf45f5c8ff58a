"""The processes an app's image starts: the Procfile's; else a WSGI app under gunicorn or an
ASGI app under uvicorn when installed (the module found as Heroku's and Paketo's docs describe:
a Django project's `<project>/wsgi.py`, else `application`/`app` in wsgi.py, asgi.py, app.py,
main.py or server.py); else `python app.py|main.py|server.py`. `PORT` is honoured (8080 by
default); commands run under bash so that `$PORT` in a Procfile expands at launch."""
import json
import re
from pathlib import Path

CANDIDATES = ["wsgi", "asgi", "app", "main", "server", "application"]
ASGI_HINTS = re.compile(r"\b(FastAPI|Starlette|Quart|Litestar)\s*\(|^async\s+def\s+(app|application)\s*\(", re.M)
CALLABLE = re.compile(r"^(?:(app|application)\s*(?::[^=]*)?=|(?:async\s+)?def\s+(app|application)\s*\()", re.M)


def procfile(app):
    path = app / "Procfile"
    if not path.is_file():
        return []
    processes = []
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$", line)
        if m:
            processes.append((m.group(1), m.group(2)))
    return processes


def find_callable(app):
    """(module:variable, is_asgi) of the app's WSGI/ASGI callable, or None."""
    if (app / "manage.py").is_file():
        for wsgi in sorted(app.glob("*/wsgi.py")):
            if "get_wsgi_application" in wsgi.read_text(errors="replace"):
                return "%s.wsgi:application" % wsgi.parent.name, False
    for name in CANDIDATES:
        path = app / (name + ".py")
        if not path.is_file():
            continue
        source = path.read_text(errors="replace")
        m = CALLABLE.search(source)
        if m:
            return "%s:%s" % (name, m.group(1) or m.group(2)), bool(ASGI_HINTS.search(source))
    return None


def default_command(app, venv):
    has = lambda exe: (venv / "bin" / exe).exists()
    found = find_callable(app)
    if found:
        target, asgi = found
        if asgi and has("uvicorn"):
            return "exec uvicorn %s --host 0.0.0.0 --port ${PORT:-8080}" % target, "uvicorn for the ASGI app %s" % target
        if not asgi and has("gunicorn"):
            return "exec gunicorn --bind 0.0.0.0:${PORT:-8080} %s" % target, "gunicorn for the WSGI app %s" % target
    for script in ("app.py", "main.py", "server.py"):
        if (app / script).is_file():
            return "exec python %s" % script, "python %s" % script
    return None, None


def launch_toml(app, venv):
    """launch.toml's text, and a line saying where the web process came from."""
    processes = procfile(app)
    said = "web process from the Procfile" if any(t == "web" for t, _ in processes) else None
    if not any(t == "web" for t, _ in processes):
        command, said = default_command(app, venv)
        if command:
            processes.insert(0, ("web", command))
    default = "web" if any(t == "web" for t, _ in processes) else (processes[0][0] if processes else None)
    text = ""
    for kind, command in processes:
        text += "[[processes]]\ntype = %s\ncommand = %s\ndefault = %s\n\n" % (
            json.dumps(kind), json.dumps(["bash", "-c", command]), "true" if kind == default else "false")
    return text, said or "no web process: add a Procfile (web: …)"
