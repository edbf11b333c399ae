"""The stored form of a resolved incident's document: deflated against a preset
dictionary (issue 17, item 5: Redis per resolved incident <= 4 KB).

A resolved document is history: read seldom, changed only by a late report. deflate
alone takes its ~2.1 KB of JSON to ~1 KB, mostly repeating what every document says
(the field names, the plan's clock titles and articles); a preset dictionary of those
(``zdict-N.txt``, made once by ``scripts/make_zdict.py`` from documents of every
built-in plan) takes it to ~0.4 KB. Forms, all read forever:

- ``{"v": V, "z": base64(zlib(doc))}``: written by 0.7 before the dictionary;
- ``{"v": V, "d": N, "z": base64(zlib(doc, dictionary N))}``: written now.

A dictionary's bytes never change once released (tests/test_packing.py pins each
digest); a better one is a new N beside it. ``v`` is the document's own version, read
by ``durable.versions`` without inflating.
"""
from __future__ import annotations

import base64
import json
import zlib
from functools import cache
from importlib import resources
from typing import Any

DICTIONARY = 1  # the dictionary new documents are packed with


@cache
def dictionary(n: int) -> bytes:
    return resources.files("monitor.incidents").joinpath(f"zdict-{n}.txt").read_bytes()


def pack(doc: dict[str, Any]) -> str:
    text = json.dumps(doc, ensure_ascii=False).encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary(DICTIONARY))
    packed = base64.b64encode(deflate.compress(text) + deflate.flush()).decode("ascii")
    return json.dumps({"v": doc.get("v", 1), "d": DICTIONARY, "z": packed})


def inflate(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document in any of the forms above, as ``Incident.from_json`` reads it."""
    if "z" not in doc:
        return doc
    raw = base64.b64decode(doc["z"])
    if "d" not in doc:
        return json.loads(zlib.decompress(raw))
    inflater = zlib.decompressobj(zdict=dictionary(int(doc["d"])))
    return json.loads(inflater.decompress(raw) + inflater.flush())
