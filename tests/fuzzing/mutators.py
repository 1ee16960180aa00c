"""Byte- and structure-level mutations of seed files, deterministic for a given random generator.

Each mutator takes the seed's bytes and a ``random.Random`` and returns the mutated bytes; its
name goes into the report so a failure can be reproduced (`mutate(seed, seed_number)`).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import struct
import zlib

HUGE_NUMBERS = [b"-1", b"0", b"4294967296", b"99999999999", b"1e308", b"-1e308", b"nan", b"inf", b"-0",
                b"18446744073709551615", b"9" * 400, b"1.5", b""]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(0, max(1, len(data)))]


def zero_length(data: bytes, rng: random.Random) -> bytes:
    return b""


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    head = min(len(out), 512)  # headers live at the start: half of the flips go there
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(head) if rng.random() < 0.5 else rng.randrange(len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def random_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    start = rng.randrange(len(out))
    for i in range(start, min(len(out), start + rng.randint(1, 64))):
        out[i] = rng.randrange(256)
    return bytes(out)


def duplicate_chunk(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 2:
        return data + data
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 256))
    at = rng.randrange(len(data))
    return data[:at] + data[a:b] * rng.randint(1, 4) + data[at:]


def delete_chunk(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 2:
        return b""
    a = rng.randrange(len(data))
    return data[:a] + data[min(len(data), a + rng.randint(1, 256)):]


_NUMBER = re.compile(rb"-?\d+(\.\d+)?(e[+-]?\d+)?", re.IGNORECASE)


def patch_number(data: bytes, rng: random.Random) -> bytes:
    """Replace a number in a text header (or a text file) by a huge, negative, NaN or empty one."""
    matches = list(_NUMBER.finditer(data[:65536]))
    if not matches:
        return flip_bytes(data, rng)
    m = rng.choice(matches)
    return data[:m.start()] + rng.choice(HUGE_NUMBERS) + data[m.end():]


def patch_binary_int(data: bytes, rng: random.Random) -> bytes:
    """Overwrite a 2-, 4- or 8-byte integer or float in the first 512 bytes (binary header fields)."""
    if len(data) < 8:
        return flip_bytes(data, rng)
    size = rng.choice([2, 4, 8])
    pos = rng.randrange(0, min(len(data), 512) - size + 1)
    value = rng.choice([
        struct.pack("<h", -1) if size == 2 else struct.pack("<i", -1) if size == 4 else struct.pack("<q", -1),
        b"\xff" * size, b"\x7f" + b"\xff" * (size - 1),
        struct.pack("<f", float("nan")) if size == 4 else struct.pack("<d", float("inf")) if size == 8 else b"\0\0",
        b"\0" * size])
    return data[:pos] + value + data[pos + size:]


def json_nodes(doc, path=()):
    """(path, value) of every node of a parsed JSON document, the root first."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from json_nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from json_nodes(v, path + (i,))


def replace_at(doc, path, value):
    """``doc`` with the node at ``path`` replaced by ``value`` (in place; the root: ``value``)."""
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


_WRONG_VALUES = [None, True, 0, -1, 1e308, float("nan"), "", "x" * 10000, [], {}, [[[]]], {"a": {}},
                 10 ** 5000, [1.0] * 1000]  # 10 ** 5000 is spliced in as text


def json_wrong_type(data: bytes, rng: random.Random) -> bytes:
    """Replace one value of a JSON document by one of another type (or a huge / NaN one)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return flip_bytes(data, rng)
    path, _ = rng.choice(list(json_nodes(doc)))
    value = rng.choice(_WRONG_VALUES)
    if isinstance(value, int) and value > 10 ** 100:  # json.dumps refuses to write it: splice it in
        text = json.dumps(replace_at(doc, path, "__HUGE__"))
        return text.replace('"__HUGE__"', "9" * 5000).encode("utf-8")
    return json.dumps(replace_at(doc, path, value)).encode("utf-8")


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([100, 1000, 100_000])
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            doc = json.loads(data)
            path, _ = rng.choice(list(json_nodes(doc)))
            text = json.dumps(replace_at(doc, path, "__DEEP__"))
            return text.replace('"__DEEP__"', "[" * depth + "]" * depth).encode("utf-8")
        except (ValueError, RecursionError):
            pass
    return b"a = " + b"[" * depth + b"]" * depth + b"\n" + data  # TOML and anything else


def gzip_bomb(data: bytes, rng: random.Random) -> bytes:
    """The seed's first bytes followed by 256 MiB of zeros, gzip-compressed (about 250 KB)."""
    try:
        head = gzip.decompress(data)[:352]
    except (OSError, EOFError, zlib.error):
        head = data[:352]
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(head)]
    block = b"\0" * (1 << 20)
    parts += [compressor.compress(block) for _ in range(256)]
    parts.append(compressor.flush())
    return b"".join(parts)


BYTE_MUTATORS = [truncate, zero_length, flip_bytes, random_bytes, duplicate_chunk, delete_chunk, patch_number,
                 patch_binary_int]
JSON_MUTATORS = [json_wrong_type, deep_nesting]


def mutators_for(name: str) -> list:
    """The mutators that make sense for a seed file called ``name``."""
    found = list(BYTE_MUTATORS)
    if name.endswith((".json", ".toml")):
        found += JSON_MUTATORS * 4  # structure-aware mutations weigh more for documents
    return found


def mutate(data: bytes, name: str, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of ``data`` (maybe two stacked); returns (what was done, the bytes)."""
    chosen = rng.choice(mutators_for(name))
    out = chosen(data, rng)
    label = chosen.__name__
    if rng.random() < 0.25 and chosen is not zero_length:
        second = rng.choice(BYTE_MUTATORS[2:])
        out, label = second(out, rng), f"{label}+{second.__name__}"
    return label, out
