"""Mutations for the robustness benchmark, as hypothesis strategies.

Three layers, each a strategy that returns ``(label, mutated)``:

- bytes: bit flips, byte writes, truncation, deletion, insertion, duplication of a
  slice, junk before or after (:func:`byte_mutations`);
- JSON trees: a node replaced by a hostile value (huge or non-finite numbers, wrong
  types, deep nesting, long or lone-surrogate strings), a member deleted, added,
  renamed, duplicated (the same key twice in the text) or swapped with a sibling
  (:func:`tree_mutation`), written by :func:`dumps`, which can also emit what
  :mod:`json` never writes (``NaN``, 5,000-digit integers, duplicate keys);
- re-encodings that keep the value: whitespace, key order, ``\\uXXXX`` escapes
  (:func:`styles`), and base64 variants (:func:`b64_variant`).

Hypothesis is used as a generator, not as a test runner: the benchmark draws from
these strategies with a fixed seed and records what every consumer did.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """JSON text written verbatim (``NaN``, ``1e999``, a 5,000-digit integer, ...)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object written member by member, so a key may appear twice."""

    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Style:
    """How :func:`dumps` writes JSON: whitespace, key order and string escapes."""

    indent: int | None = None
    item_sep: str = ","
    key_sep: str = ":"
    order: str = "sorted"  # sorted | reversed | given
    escape: str = "none"  # none | ascii | all

    @property
    def label(self) -> str:
        """A short name for reports."""
        return f"indent={self.indent},sep={self.item_sep!r}{self.key_sep!r},order=" \
               f"{self.order},escape={self.escape}"


COMPACT = Style()


def dumps(node: Any, style: Style = COMPACT) -> bytes:
    """``node`` as JSON bytes in ``style``; lone surrogates pass through as bytes."""
    return _write(node, style, 0).encode("utf-8", "surrogatepass")


def _write(node: Any, style: Style, level: int) -> str:
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, (dict, Pairs)):
        items = list(node.items) if isinstance(node, Pairs) else list(node.items())
        if style.order == "sorted":
            items.sort(key=lambda kv: kv[0])
        elif style.order == "reversed":
            items.sort(key=lambda kv: kv[0], reverse=True)
        parts = [_string(k, style) + style.key_sep + _write(v, style, level + 1)
                 for k, v in items]
        return _join("{", parts, "}", style, level)
    if isinstance(node, (list, tuple)):
        return _join("[", [_write(v, style, level + 1) for v in node], "]", style, level)
    if isinstance(node, str):
        return _string(node, style)
    if isinstance(node, bool) or node is None:
        return json.dumps(node)
    if isinstance(node, int):
        return str(node)
    return json.dumps(node)  # floats, NaN and infinities included


def _join(open_: str, parts: list[str], close: str, style: Style, level: int) -> str:
    if not parts:
        return open_ + close
    if style.indent is None:
        return open_ + style.item_sep.join(parts) + close
    pad = "\n" + " " * (style.indent * (level + 1))
    return open_ + pad + (style.item_sep.rstrip() + pad).join(parts) + \
        "\n" + " " * (style.indent * level) + close


def _string(text: str, style: Style) -> str:
    if style.escape == "all":
        return '"' + "".join(f"\\u{unit:04x}" for unit in _utf16(text)) + '"'
    return json.dumps(text, ensure_ascii=style.escape == "ascii")


def _utf16(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]


def styles(orders: tuple[str, ...] = ("sorted", "reversed", "given")
           ) -> st.SearchStrategy[Style]:
    """Re-encodings that keep every JSON value: whitespace, key order, escapes.

    (A packed header is the exception that keeps its key order: its blobs follow
    the document order, so ``orders`` is then ``("given",)``.)
    """
    return st.builds(
        Style,
        indent=st.sampled_from([None, 0, 1, 2, 4]),
        item_sep=st.sampled_from([",", ", ", " ,", ",\n", ",\t", " \r\n, "]),
        key_sep=st.sampled_from([":", ": ", " : ", ":\t"]),
        order=st.sampled_from(orders),
        escape=st.sampled_from(["none", "ascii", "all"]),
    )


# --- bytes -------------------------------------------------------------------------


@st.composite
def _one_byte_mutation(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    if not data:
        return "append", draw(st.binary(min_size=1, max_size=8))
    at = draw(st.integers(0, len(data) - 1))
    end = draw(st.integers(at, min(len(data), at + 64)))
    kind = draw(st.sampled_from(["flip", "write", "truncate", "delete", "insert",
                                 "duplicate", "append", "prepend"]))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return kind, data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:]
    if kind == "write":
        return kind, data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if kind == "truncate":
        return kind, data[:at]
    if kind == "delete":
        return kind, data[:at] + data[max(end, at + 1):]
    if kind == "insert":
        return kind, data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if kind == "duplicate":
        return kind, data[:end] + data[at:end] + data[end:]
    junk = draw(st.sampled_from([b"\x00", b" ", b"\n", b"\xef\xbb\xbf", b"}", b"]", b"{}",
                                 b"\xff", b"FSP1"]))
    return kind, (data + junk) if kind == "append" else (junk + data)


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    """One to three byte-level mutations of ``data``, applied in turn."""
    labels = []
    for _ in range(draw(st.integers(1, 3))):
        label, data = draw(_one_byte_mutation(data))
        labels.append(label)
    return "bytes:" + "+".join(labels), data


# --- JSON trees --------------------------------------------------------------------

#: Values no recipe or envelope field should take, or only at its very edge.
HOSTILE: tuple[Any, ...] = (
    Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"),
    Raw("1" + "0" * 5000), Raw("-" + "9" * 4400), Raw("1E400"), Raw("-0"), Raw("1.0"),
    Raw("0.0e-999"), 2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**30, 1e308, -1e308, 5e-324,
    -0.0, 0, -1, 1.5, 10**12 + 1, "3", "", "\ud800", "\udfff\ud800", "\x00", "NaN", "null",
    "x" * 70_000, True, False, None, [], {}, [None], {"": None}, [[[]]],
)


def _deep(depth: int, inner: str = "0") -> Raw:
    return Raw("[" * depth + inner + "]" * depth)


def hostile_values() -> st.SearchStrategy[Any]:
    """A hostile value: from :data:`HOSTILE`, deep nesting, or any drawn JSON value."""
    scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
               | st.floats(allow_nan=True, allow_infinity=True))
    drawn = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                         max_leaves=8)
    deep = st.sampled_from([64, 999, 5_000, 200_000]).map(_deep)
    deep_objects = st.sampled_from([64, 999, 5_000, 100_000]).map(
        lambda d: Raw('{"a":' * d + "0" + "}" * d))
    return st.one_of(st.sampled_from(HOSTILE), deep, deep_objects, drawn)


Path = tuple[Any, ...]


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _get(node: Any, path: Path) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(node: Any, path: Path, value: Any) -> Any:
    """A copy of ``node`` with the value at ``path`` replaced (containers copied)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _set(node[head], rest, value)}
    copy = list(node)
    copy[head] = _set(node[head], rest, value)
    return copy


def _retype(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return Raw(f"{value}.0") if abs(value) < 10**15 else str(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, str):
        return 1 if value else 0
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return "null"


_NEW_KEYS = ("x", "schema_", "unknown", "Name", "__proto__", "name ", "payload", "sig", "")


@st.composite
def tree_mutation(draw: st.DrawFn, tree: Any) -> tuple[str, Any]:
    """One structural mutation of a parsed JSON ``tree`` (returns a new tree)."""
    paths = _paths(tree)
    path = draw(st.sampled_from(paths))
    node = _get(tree, path)
    parent: Any = _get(tree, path[:-1]) if path else None
    ops = ["replace", "retype", "wrap", "nest"]
    if isinstance(node, dict):
        ops.append("add")
    if isinstance(parent, dict):
        ops += ["delete", "duplicate", "rename"]
        if len(parent) > 1:
            ops.append("swap")
    if isinstance(parent, list):
        ops += ["delete", "duplicate"]
    op = draw(st.sampled_from(ops))
    where = "/".join(str(p) for p in path) or "(root)"
    if op == "replace":
        return f"tree:replace {where}", _set(tree, path, draw(hostile_values()))
    if op == "retype":
        return f"tree:retype {where}", _set(tree, path, _retype(node))
    if op == "wrap":
        wrapped = draw(st.sampled_from([[node], {"value": node}, [node, node]]))
        return f"tree:wrap {where}", _set(tree, path, wrapped)
    if op == "nest":
        depth = draw(st.sampled_from([64, 999, 5_000, 200_000]))
        return f"tree:nest {where} {depth}", _set(tree, path, _deep(depth, dumps(node).decode(
            "utf-8", "surrogatepass")))
    if op == "add":
        key = draw(st.sampled_from(_NEW_KEYS) | st.text(max_size=6))
        return f"tree:add {where}/{key!r}", _set(tree, path, {**node, key: draw(
            hostile_values())})
    key = path[-1]
    assert parent is not None  # these operations are only drawn for a node with a parent
    if isinstance(parent, list):
        items = list(parent)
        if op == "delete":
            del items[key]
        else:
            items.insert(key, node)
        return f"tree:{op} {where}", _set(tree, path[:-1], items)
    if op == "delete":
        return f"tree:delete {where}", _set(tree, path[:-1], {k: v for k, v in parent.items()
                                                             if k != key})
    if op == "rename":
        new = draw(st.sampled_from([key.upper(), key + " ", " " + key, key + "_",
                                    key.replace("a", "\u0430"), key[:-1] or "x"]))
        renamed = {(new if k == key else k): v for k, v in parent.items()}
        return f"tree:rename {where}->{new!r}", _set(tree, path[:-1], renamed)
    if op == "swap":
        other = draw(st.sampled_from([k for k in parent if k != key]))
        swapped = {**parent, key: parent[other], other: parent[key]}
        return f"tree:swap {where}<->{other}", _set(tree, path[:-1], swapped)
    # duplicate: the same key twice in the text, the hostile value first or last
    twin = draw(hostile_values() | st.just(node))
    first = draw(st.booleans())
    items = []
    for k, v in parent.items():
        if k == key:
            items += [(k, twin), (k, v)] if first else [(k, v), (k, twin)]
        else:
            items.append((k, v))
    return f"tree:duplicate-key {where}", _set(tree, path[:-1], Pairs(tuple(items)))


# --- base64 ------------------------------------------------------------------------

_B64_KINDS = ("std", "url", "std-nopad", "url-nopad", "newline", "space", "junk", "mixed",
              "noncanonical", "extra-pad", "inner-pad", "empty")
#: Variants that keep the decoded bytes (DSSE allows either alphabet, padded or not).
B64_LEGIT = frozenset({"std", "url", "std-nopad", "url-nopad", "mixed"})


@st.composite
def b64_variant(draw: st.DrawFn, raw: bytes) -> tuple[str, str]:
    """``raw`` as base64 in one of :data:`_B64_KINDS` (label, text)."""
    kind = draw(st.sampled_from(_B64_KINDS))
    std = base64.b64encode(raw).decode("ascii")
    url = base64.urlsafe_b64encode(raw).decode("ascii")
    at = draw(st.integers(0, len(std)))
    text = {
        "std": std, "url": url, "std-nopad": std.rstrip("="), "url-nopad": url.rstrip("="),
        "newline": std[:at] + "\n" + std[at:], "space": std[:at] + " " + std[at:],
        "junk": std[:at] + draw(st.sampled_from("!*.~@$%")) + std[at:],
        "mixed": _mix(std, url), "noncanonical": _noncanonical(std),
        "extra-pad": std + "==", "inner-pad": std[:at] + "=" + std[at:], "empty": "",
    }[kind]
    return f"b64:{kind}", text


def _mix(std: str, url: str) -> str:
    """Standard alphabet for the first half, URL-safe for the rest."""
    half = len(std) // 2
    return std[:half] + url[half:]


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _noncanonical(std: str) -> str:
    """Set the unused low bits of the last character (decodes to the same bytes)."""
    core = std.rstrip("=")
    pad = len(std) - len(core)
    if not core or pad == 0:
        return std
    unused = (1 << (2 * pad)) - 1  # 2 pad chars: 4 unused bits; 1 pad char: 2 bits
    last = _ALPHABET.index(core[-1]) | unused
    return core[:-1] + _ALPHABET[last] + "=" * pad
