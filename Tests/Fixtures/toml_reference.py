#!/usr/bin/env python3
"""Reads TOML documents with Python's tomllib (a TOML 1.0 reader) and compares each result with
what Cairn's reader made of the same document. Input: a JSON file {"documents": [text, ...],
"ours": [{"ok": value} | {"error": message}, ...]}; values use {"$f": "<IEEE-754 bits>"|"nan"}
for floats and {"$dt": true} for datetimes. Prints one JSON summary; exit status 0 always (the
caller judges)."""
import datetime
import json
import struct
import sys
import tomllib


class BigInt(Exception):
    pass


def norm(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        if not -2**63 <= v < 2**63:
            raise BigInt()
        return v
    if isinstance(v, float):
        return {"$f": "nan" if v != v else str(struct.unpack("<Q", struct.pack("<d", v))[0])}
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return {"$dt": True}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def canonical(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    counts = {"compared": 0, "read_alike": 0, "refused_by_both": 0, "skipped_big_integers": 0}
    disagreements = []
    for text, ours in zip(data["documents"], data["ours"]):
        counts["compared"] += 1
        try:
            theirs = {"ok": norm(tomllib.loads(text))}
        except BigInt:
            counts["skipped_big_integers"] += 1
            continue
        except tomllib.TOMLDecodeError as e:
            theirs = {"error": str(e)}
        if "error" in theirs and "error" in ours:
            counts["refused_by_both"] += 1
        elif "ok" in theirs and "ok" in ours and canonical(theirs["ok"]) == canonical(ours["ok"]):
            counts["read_alike"] += 1
        else:
            disagreements.append({"document": text, "tomllib": theirs, "cairn": ours})
    counts["disagreements"] = len(disagreements)
    counts["examples"] = disagreements[:8]
    print(json.dumps(counts, ensure_ascii=False))


main()
