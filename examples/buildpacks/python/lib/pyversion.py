"""Which Python an app asks for, and whether the stack's Python satisfies it.

Read, in order: .python-version, runtime.txt (`python-3.x.y`), Pipfile `[requires]`,
pyproject.toml `project.requires-python`, Poetry's `tool.poetry.dependencies.python`.
Exact requests (`3.11`, `3.11.4`) must match major and minor; a different patch release is
used with a warning (the stack's Python is the one there is). Specifiers follow PEP 440
(`>=3.10,<3.13`, `==3.11.*`, `~=3.10`), Poetry's `^3.10`, `~3.10` and `||` too.
"""
import re
import tomllib
from pathlib import Path


class Unsatisfied(Exception):
    pass


def parse(text):
    """A version as a tuple of ints; `3.11.*` gives (3, 11)."""
    parts = []
    for piece in text.strip().split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    if not parts:
        raise ValueError("not a version: %r" % text)
    return tuple(parts)


def cmp(a, b):
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def clause_holds(clause, have):
    clause = clause.strip()
    if clause in ("", "*"):
        return True
    m = re.match(r"^(===|==|!=|~=|<=|>=|<|>|\^|~)?\s*v?([0-9][0-9.]*\*?)$", clause)
    if not m:
        raise ValueError("not a version constraint: %r" % clause)
    op, text = m.group(1), m.group(2)
    want = parse(text)
    if text.endswith("*") or op is None:
        # `==3.11.*`, and a bare `3.11` (Poetry, Pipfile): the components given must match.
        same = have[:len(want)] == want
        return same if op != "!=" else not same
    if op in ("==", "==="):
        return cmp(have, want) == 0
    if op == "!=":
        return cmp(have, want) != 0
    if op == ">=":
        return cmp(have, want) >= 0
    if op == "<=":
        return cmp(have, want) <= 0
    if op == ">":
        return cmp(have, want) > 0
    if op == "<":
        return cmp(have, want) < 0
    if op == "~=":  # PEP 440: >= X.Y.Z and == X.Y.*
        return cmp(have, want) >= 0 and have[:len(want) - 1] == want[:-1]
    if op == "^":  # Poetry: the leftmost non-zero component stays
        lead = next((i for i, v in enumerate(want) if v != 0), len(want) - 1)
        return cmp(have, want) >= 0 and have[:lead + 1] == want[:lead + 1]
    if op == "~":  # Poetry: ~3.10 is >=3.10,<3.11; ~3 is >=3,<4
        keep = max(1, len(want) - 1) if len(want) > 2 else len(want)
        return cmp(have, want) >= 0 and have[:keep] == want[:keep]
    raise ValueError(clause)


def satisfies(spec, have):
    """`spec`: clauses joined by `,` (and), alternatives joined by `||` (Poetry)."""
    return any(all(clause_holds(c, have) for c in alt.split(",") if c.strip())
               for alt in spec.split("||"))


def requested(app):
    """(where, what, exact) of the first request found, or None."""
    app = Path(app)
    pv = app / ".python-version"
    if pv.is_file():
        for line in pv.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                return (".python-version", line.removeprefix("python-").removeprefix("cpython-"), True)
    rt = app / "runtime.txt"
    if rt.is_file():
        text = rt.read_text().strip()
        if not re.match(r"^python-\d+(\.\d+)*$", text):
            raise Unsatisfied("runtime.txt: expected `python-3.X.Y`, found %r" % text)
        return ("runtime.txt", text.removeprefix("python-"), True)
    pipfile = app / "Pipfile"
    if pipfile.is_file():
        req = load_toml(pipfile).get("requires", {})
        for key in ("python_full_version", "python_version"):
            if key in req:
                return ("Pipfile [requires] " + key, str(req[key]), True)
    pyproject = app / "pyproject.toml"
    if pyproject.is_file():
        doc = load_toml(pyproject)
        if "requires-python" in doc.get("project", {}):
            return ("pyproject.toml requires-python", doc["project"]["requires-python"], False)
        poetry = doc.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python")
        if isinstance(poetry, str):
            return ("pyproject.toml tool.poetry.dependencies.python", poetry, False)
    return None


def load_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise Unsatisfied("%s: not valid TOML: %s" % (path.name, e))


def check(app, have, distro):
    """A line saying which Python is used and why; raises Unsatisfied when the stack's cannot serve."""
    have_text = ".".join(map(str, have))
    req = requested(app)
    if req is None:
        return "Python %s (the stack's; no version asked for)" % have_text
    where, what, exact = req
    try:
        if exact:
            want = parse(what)
            ok = have[:2] == want[:2] if len(want) >= 2 else have[:1] == want
            patch = ok and len(want) > 2 and have[:len(want)] != want
        else:
            ok, patch = satisfies(what, have), False
    except ValueError as e:
        raise Unsatisfied("%s: %s" % (where, e))
    if not ok:
        raise Unsatisfied(
            "%s asks for Python %s; this stack has Python %s (%s).\n"
            "Build on a stack whose Python satisfies it (a newer Debian release, e.g. "
            "`cairn stack create debian-trixie --debian trixie` has 3.13), or ask for %s."
            % (where, what, have_text, distro or "its distribution", ".".join(map(str, have[:2]))))
    if patch:
        return ("Python %s (the stack's; %s asks for %s: the patch release is the stack's)"
                % (have_text, where, what))
    return "Python %s (the stack's; %s asks for %s)" % (have_text, where, what)
