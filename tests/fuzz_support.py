"""What the two fuzzers share (tests/test_fuzz_protocol.py, tests/test_fuzz_api.py): the
Hypothesis settings profile, the error codes the documents promise, and JSON objects made
from a description of their fields, valid and mutated.

A `Case` is one JSON text to send and what the broker must do with it: `expect` None
(anything documented: an answer, or a refusal with a documented code), REFUSE (a
refusal, any documented code) or one exact code. Each mutated case carries exactly one
mutation, so its expected code follows from the documents alone (for a WebSocket frame:
the size first, then JSON, then text, then the type, then the fields).

The budget is deterministic (`derandomize`: the same cases on every run, no example
database); FUZZ_EXAMPLES raises every test's number of cases for a release run
(docs/security.md, "Fuzzing").
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from broker.inputs import MAX_INT

DOCS: Final = Path(__file__).resolve().parent.parent / "docs"
REFUSE: Final = "refused"  # any documented error code

settings.register_profile(
    "fuzz", derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


def fuzz_settings(default: int) -> settings:
    """The profile with `default` cases, or FUZZ_EXAMPLES where that is more."""
    wanted = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
    return settings(settings.get_profile("fuzz"), max_examples=max(default, wanted))


# -- the documented codes -------------------------------------------------------------------


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`, as rows of cells (the header row first)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


_CODE: Final = re.compile(r"`([a-z][a-z0-9_]*)`")


def protocol_codes() -> frozenset[str]:
    """The `error` frame codes of docs/protocol.md: every table with a code column."""
    codes: set[str] = set()
    for header, *rows in _tables((DOCS / "protocol.md").read_text()):
        columns = [i for i, cell in enumerate(header) if cell in ("`code`", "`error.code`")]
        for row in rows:
            for column in columns:
                codes.update(_CODE.findall(row[column]))
    return frozenset(codes)


def api_codes() -> frozenset[tuple[int, str]]:
    """(status, code) of every error docs/api.md lists: in its table of errors
    (`| 409 | \\`key_used\\` | …`), and with a route's answers (`400 \\`invalid_survey\\``,
    `409 \\`a\\` (when), \\`b\\`; 404 …`)."""
    text = (DOCS / "api.md").read_text()
    pairs: set[tuple[int, str]] = set()
    for _, *rows in _tables(text):
        for row in rows:
            if len(row) > 1 and re.fullmatch(r"[45]\d\d", row[0]):
                pairs.update((int(row[0]), code) for code in _CODE.findall(row[1]))
            for part in (part for cell in row for part in cell.split(";")):
                status = re.match(r"\s*([45]\d\d)\b", part)  # "400 `a` (why), `b`"
                if status:
                    pairs.update((int(status[1]), code) for code in _CODE.findall(part))
    for status, codes in re.findall(r"\b([45]\d\d) ((?:`[a-z0-9_]+`(?:, | or )?)+)", text):
        pairs.update((int(status), code) for code in _CODE.findall(codes))
    return frozenset(pairs)


# -- JSON values ----------------------------------------------------------------------------

# Text that has broken parsers, databases and pages before: none of it may be refused for
# being what it is.
ODD_TEXT: Final = ("", " ", "\t\r\n", "\u202eevil\u202c", "\ufeff", "e\u0301", "\U0001f600",
                   "\U0010ffff", "\uffff", "\u2028\u2029", "\u0085", "ǅ", "ß" * 90,
                   "<script>alert(1)</script>", "'; DROP TABLE sessions; --", "%00",
                   "\\u0000", "../../etc/passwd", "{{ 7*7 }}", "0", "-1", "null", "1e999")
LONE_SURROGATES: Final = ("\ud800", "\udbff", "\udc00", "\udfff")
HUGE_INTS: Final = st.one_of(st.integers(MAX_INT + 1, 2**64 + 1),
                             st.integers(-(2**64), -MAX_INT - 2),
                             st.sampled_from([2**64, -(2**63) - 1, 10**400]))
SMALL_INTS: Final = st.one_of(st.integers(-3, 20), st.integers(-MAX_INT - 1, MAX_INT))


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Valid text: any Unicode scalar value but NUL (never a lone surrogate), and ODD_TEXT."""
    return st.one_of(st.sampled_from(ODD_TEXT), st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size))


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value without bad text: numbers of any size, NaN and the infinities (which
    Python's json module reads and writes), nested lists and objects."""
    leaves = st.one_of(st.none(), st.booleans(), SMALL_INTS, HUGE_INTS,
                       st.floats(allow_nan=True, allow_infinity=True), texts())
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(texts(12), inner, max_size=4)),
        max_leaves=max_leaves)


KINDS: Final[dict[str, st.SearchStrategy[Any]]] = {
    "string": texts(), "integer": SMALL_INTS, "boolean": st.booleans(), "null": st.none(),
    "number": st.floats(allow_nan=True, allow_infinity=True),
    "array": st.lists(json_values(4), max_size=3),
    "object": st.dictionaries(texts(12), json_values(4), max_size=3)}


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a JSON object: the JSON kinds it takes, whether it is required, and
    the values it is made of when the case is not about it (valid or not, as they come)."""

    name: str
    kinds: frozenset[str]
    required: bool
    values: st.SearchStrategy[Any]


@dataclasses.dataclass(frozen=True)
class Case:
    raw: str | bytes
    expect: str | None
    what: str

    def __repr__(self) -> str:  # Hypothesis prints failing cases: keep them short
        shown = self.raw if len(self.raw) < 300 else self.raw[:200] + "…" + self.raw[-40:]
        return f"Case({self.what!r}, expect={self.expect!r}, raw={shown!r})"


def dumps(value: Any, *, ascii_only: bool = False) -> str:
    """As a client writes it: \\uXXXX escapes for lone surrogates (they have no UTF-8)."""
    try:
        return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    except UnicodeEncodeError:  # pragma: no cover - json.dumps escapes or passes through
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _bad_text() -> st.SearchStrategy[str]:
    """Text that is no text the broker keeps: a NUL or a lone surrogate within it."""
    return st.builds(lambda a, bad, b: a + bad + b, texts(8),
                     st.sampled_from(("\x00", *LONE_SURROGATES)), texts(8))


def _deep(depth: int, inner: Any = 0) -> str:
    """A JSON value nested `depth` lists (or objects) deep, as text."""
    return "[" * depth + json.dumps(inner) + "]" * depth


@st.composite
def cases(draw: st.DrawFn, fields: tuple[Field, ...], fixed: Mapping[str, Any],
          codes: Mapping[str, str | None], *, size_limit: int, oversize_code: str,
          valid_percent: int = 35, null_is_absent: bool = False) -> Case:
    """An object of `fixed` members (the frame's type, say) and `fields`, valid (in
    `valid_percent` of the cases) or with one mutation. `codes` names the code each kind
    of mutation must get, where the documents say which (keys: wrong_type, missing, huge,
    not_object); the rest get REFUSE. JSON, text and size refusals are `bad_json`,
    `bad_text` and `oversize_code`. With `null_is_absent` (the API's way), null in an
    optional member is no wrong type: it stands for the default."""
    body: dict[str, Any] = dict(fixed)
    for field in fields:
        if field.required or draw(st.booleans()):
            body[field.name] = draw(field.values)
    if draw(st.integers(0, 3)) == 0:  # extra members are ignored, whatever they hold
        extra = draw(st.dictionaries(texts(12), json_values(6), min_size=1, max_size=3))
        names = {f.name for f in fields} | set(fixed)
        body.update({k: v for k, v in extra.items() if k not in names})
    typed = [f for f in fields if f.kinds]
    ints = [f for f in fields if "integer" in f.kinds]
    required = [f for f in fields if f.required]
    mutations = ["bad_text", "bad_text_key", "not_json", "deep", "deeply_nested_value",
                 "oversize", "not_object", "odd_numbers"]
    mutations += ["wrong_type"] * 2 * bool(typed) + ["huge"] * bool(ints)
    mutations += ["missing"] * bool(required)
    valid = draw(st.integers(0, 99)) < valid_percent
    mutation = "valid" if valid else draw(st.sampled_from(mutations))
    ascii_only = draw(st.booleans())
    expect: str | None = None
    raw: str
    if mutation == "wrong_type":
        field = draw(st.sampled_from(typed))
        wrong = sorted(set(KINDS) - field.kinds
                       - ({"null"} if null_is_absent and not field.required else set()))
        kind = draw(st.sampled_from(wrong))
        value = draw(KINDS[kind] if kind != "number" else st.floats(
            allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer()))
        body[field.name] = value
        expect = codes.get("wrong_type", REFUSE)
        mutation = f"wrong_type {field.name}={kind}"
    elif mutation == "huge":
        field = draw(st.sampled_from(ints))
        body[field.name] = draw(HUGE_INTS)
        expect = codes.get("huge", REFUSE)
        mutation = f"huge {field.name}"
    elif mutation == "missing":
        field = draw(st.sampled_from(required))
        body.pop(field.name, None)
        expect = codes.get("missing", REFUSE)
        mutation = f"missing {field.name}"
    elif mutation == "bad_text":  # in a member's value, nested or not
        name = draw(st.sampled_from(sorted(set(body) - set(fixed)) or ["x"]))
        bad = draw(_bad_text())
        body[name] = draw(st.sampled_from([bad, [bad], {"k": bad}]))
        expect = "bad_text"
        ascii_only = True
    elif mutation == "bad_text_key":
        body[draw(_bad_text())] = draw(json_values(2))
        expect = "bad_text"
        ascii_only = True
    elif mutation == "odd_numbers":  # extra members: -0.0, 1e308, NaN, huge, as text
        body["n"] = draw(st.sampled_from(
            [-0.0, 1e308, float("nan"), float("inf"), -float("inf"), 2**200, 5e-324]))
    raw = dumps(body, ascii_only=ascii_only)
    if mutation == "not_json":
        # No prefix of an object is JSON (the empty one is no body at all, for the API).
        raw = raw[:draw(st.integers(1, len(raw) - 1))]
        expect = "bad_json"
    elif mutation == "deep":  # deeper than any parser's stack
        raw = raw[:-1] + ',"deep":' + _deep(draw(st.integers(3000, 20000))) + "}"
        expect = "bad_json"
    elif mutation == "deeply_nested_value":  # deep, but within what json.loads reads
        name = draw(st.sampled_from([f.name for f in fields] or ["deep"]))
        body.pop(name, None)
        raw = dumps(body, ascii_only=ascii_only)
        nested = _deep(draw(st.integers(50, 990)), draw(st.sampled_from([0, "x", None])))
        raw = raw[:-1] + ("," if len(body) else "") + json.dumps(name) + ":" + nested + "}"
        expect = None  # refused where a field wants no list, taken in an extra member
    elif mutation == "oversize":  # over the limit, in characters and in bytes alike
        raw = dumps(body, ascii_only=True)
        filler = draw(st.sampled_from(["x", "é", "\U0001f600"]))
        escaped = json.dumps(filler)[1:-1]  # ASCII: as many bytes as characters
        pad = size_limit + 1 - len(raw) + draw(st.integers(0, 30000))
        raw = (raw[:-1] + ("," if len(body) else "") + '"pad":"'
               + escaped * (pad // len(escaped) + 1) + '"}')
        expect = oversize_code
    elif mutation == "not_object":
        raw = dumps(draw(st.one_of(st.lists(json_values(3), max_size=3), texts(), SMALL_INTS,
                                   st.none(), st.booleans())))
        expect = codes.get("not_object", REFUSE)
    return Case(raw, expect, mutation)


def strings_pool(*values: str) -> st.SearchStrategy[str]:
    """A field's values: mostly from `values` (what names real things), else any text."""
    return st.one_of(st.sampled_from(values), st.sampled_from(values), texts())


Maker = Callable[[], Any]
