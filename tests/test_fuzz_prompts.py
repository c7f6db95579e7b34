"""Fuzzing prompt-set files (issue 19): whatever bytes a prompt-set file holds, `load_prompt_set` either loads it
or raises a `UserError` whose lines are few, bounded, printable and name the file, and `vbench-suite validate`
exits 0 or 2 without a traceback.

Cases are mutations of the shipped suites (byte flips, truncation, deletion, duplication, inserted YAML tags,
anchors and aliases, deep nesting, billion-laughs blocks, huge values, control characters, invalid UTF-8) and
well-formed files with random YAML values in every field. `make test` runs a small derandomised sample (well under
30 s on 2 cores); `pytest -m slow tests/test_fuzz_prompts.py -s` runs the long campaign and prints its figures.
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbench_suite.cli import main
from vbench_suite.errors import MAX_LINE_CHARS, UserError
from vbench_suite.suites import MAX_LISTED_ERRORS, PromptSetErrors, load_prompt_set, shipped_suites_dir

SHIPPED = {name: (shipped_suites_dir() / f"{name}.yaml").read_bytes() for name in ("smoke", "standard")}
BASES = ("smoke", "smoke", "smoke", "standard")
"""Mutated files start from these (smoke mostly: the standard suite costs 30 times more to load)."""
CLI_PREFIX = "vbench-suite: error: "
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

# Inserted at a random place; each is a way a file went wrong in the issue-19 trial, or YAML syntax around it.
SNIPPETS: tuple[bytes, ...] = (
    b"!foo ", b"!!int ", b"!!float ", b"!!bool ", b"!!null ", b"!!timestamp ", b"!!binary ", b"!!set ", b"!!omap ",
    b"!!pairs ", b"!!str ", b"!!seq ", b"!!map ", b"!!merge ", b"!!python/object/apply:os.system ",
    b"!<tag:example.com,2026:x> ", b"! ", b"&a ", b"*a ", b"*undefined ", b"&a [*a] ", b"<<: *a\n", b"<<", b"= ",
    b"\x00", b"\x01", b"\x08", b"\x1b[31m", b"\x7f", b"\xc2\x85", b"\xc2\x9b", b"\xe2\x80\xa8", b"\xe2\x80\x8b",
    b"\xef\xbb\xbf", b"\xe9", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\t", b"\r", b"\r\n",
    b"\n", b"---\n", b"...\n", b"%YAML 1.1\n", b"%TAG ! tag:x,2026:\n", b"? ", b": ", b"- ", b"# ", b"{", b"}",
    b"[", b"]", b'"', b"'", b"|", b">", b",", b"@", b"`", b"%", b"\\", b'"\\x00"', b'"\\u2028"', b'"\\e"',
    b"9" * 5000, b"1" * 4301, b"0x" + b"f" * 4000, b"1" + b":59" * 3000, b"#frame=" + b"9" * 5000, b"1e400",
    b".inf", b"-.nan", b"0x", b"0b2", b"0o9", b"1:2:3", b"~", b"null", b"yes",
    b"2001-13-45", b"2001-02-03t", b"[1, 2]", b"{a: b}", b"[99999999999, 1]", b"99999999999x1", b"0x0",
)


def nesting(depth: int, flow: bool) -> bytes:
    """`depth` nested lists, as flow brackets or as indented block mappings."""
    if flow:
        return b"[" * depth + b"]" * depth
    return b"".join(b"\n" + b"  " * level + b"k:" for level in range(depth)) + b" v\n"


def laughs(levels: int, width: int) -> bytes:
    """A 'billion laughs': each anchor is a list of `width` aliases of the previous one (`width ** levels` leaves)."""
    parts = [b"&l0 [" + b",".join([b"lol"] * width) + b"]"]
    parts += [b"&l%d [" % i + b",".join([b"*l%d" % (i - 1)] * width) + b"]" for i in range(1, levels)]
    return b"[" + b", ".join(parts) + b"]"


def many_aliases(count: int) -> bytes:
    return b"[&m x, " + b", ".join([b"*m"] * count) + b"]"


# --------------------------------------------------------------------------------------------- mutations

Op = tuple[Any, ...]
"""(kind, position, argument): applied by `apply_ops`; a position is taken modulo the data length + 1. Kinds: flip,
truncate, insert, append, delete, duplicate (bytes of any file) and value (text after the next 'key: ').
`tests/test_fuzz_videos.py` mutates video files with the same operations."""


def apply_ops(data: bytes, ops: list[Op]) -> bytes:
    """`data` with each operation applied in turn (positions wrap around, so any integer is valid)."""
    for kind, pos, arg in ops:
        at = pos % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ arg]) + data[at + 1:]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + arg + data[at:]
        elif kind == "append":
            data = data + arg
        elif kind == "delete":
            data = data[:at] + data[at + arg:]
        elif kind == "duplicate":
            data = data[:at + arg] + data[at:at + arg] + data[at + arg:]
        elif kind == "value":  # replace what follows the next 'key: ' with `arg`
            colon = data.find(b": ", at)
            if colon >= 0:
                end = data.find(b"\n", colon)
                data = data[:colon + 2] + arg + (data[end:] if end >= 0 else b"")
    return data


POSITIONS = st.integers(0, 40_000)
SNIPPET = st.one_of(
    st.sampled_from(SNIPPETS),
    st.builds(nesting, st.integers(1, 1200), st.booleans()),
    st.builds(laughs, st.integers(2, 10), st.integers(2, 10)),
    st.builds(many_aliases, st.integers(1, 1500)),
    st.integers(0, 40_000).map(lambda n: b"x" * n),
    st.binary(max_size=24),
    st.text(max_size=24).map(lambda text: text.encode("utf-8")),
)
OP = st.one_of(
    st.tuples(st.just("insert"), POSITIONS, SNIPPET),
    st.tuples(st.just("value"), POSITIONS, SNIPPET),
    st.tuples(st.just("flip"), POSITIONS, st.integers(1, 255)),
    st.tuples(st.just("truncate"), POSITIONS, st.none()),
    st.tuples(st.just("delete"), POSITIONS, st.integers(1, 300)),
    st.tuples(st.just("duplicate"), POSITIONS, st.integers(1, 400)),
)
MUTATED = st.builds(lambda base, ops: apply_ops(SHIPPED[base], ops), st.sampled_from(BASES),
                    st.lists(OP, min_size=1, max_size=4))


def random_snippet(rng: random.Random) -> bytes:
    """The plain-`random` twin of `SNIPPET` (for the counted campaign and the subprocess sample)."""
    pick = rng.randrange(8)
    if pick == 0:
        return nesting(rng.randint(1, 1200), rng.random() < 0.5)
    if pick == 1:
        return laughs(rng.randint(2, 10), rng.randint(2, 10))
    if pick == 2:
        return many_aliases(rng.randint(1, 1500))
    if pick == 3:
        return b"x" * rng.choice([rng.randint(0, 40_000), 3 * 1024 * 1024])
    if pick == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
    return rng.choice(SNIPPETS)


def random_case(rng: random.Random) -> bytes:
    """One mutated shipped suite, drawn with `rng`."""
    ops: list[Op] = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["insert", "insert", "value", "flip", "truncate", "delete", "duplicate"])
        arg: Any = {"insert": None, "value": None, "flip": rng.randint(1, 255), "truncate": None,
                    "delete": rng.randint(1, 300), "duplicate": rng.randint(1, 400)}[kind]
        if kind in ("insert", "value"):
            arg = random_snippet(rng)
        ops.append((kind, rng.randrange(40_000), arg))
    return apply_ops(SHIPPED[rng.choice(BASES)], ops)


# ------------------------------------------------------------------------------------ well-formed, odd values

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10**300, 10**300), st.floats(),
                   st.text(max_size=30), st.text(max_size=3000), st.binary(max_size=10), st.dates())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
FIELDS = ("name", "version", "description", "fvd_reference", "defaults", "prompts", "duration_s", "fps",
          "resolution", "mode", "id", "text", "category", "tags", "image", "first_frame", "last_frame", "presenter",
          "colour", "<<")


def with_value(field: str, value: Any, where: int) -> bytes:
    """The smoke suite with `field` set to `value` at the top level, in `defaults` or in prompt `where`."""
    suite = yaml.safe_load(SHIPPED["smoke"])
    target = suite if where == 0 else suite["defaults"] if where == 1 else suite["prompts"][where % 8]
    target[field] = value
    return yaml.safe_dump(suite, allow_unicode=where % 2 == 0, sort_keys=False).encode("utf-8")


WELL_FORMED = st.builds(with_value, st.sampled_from(FIELDS), VALUES, st.integers(0, 9))


# ------------------------------------------------------------------------------------------------ checks


def check_error(exc: UserError, path: Path) -> None:
    """A user error about `path`: at most `MAX_LISTED_ERRORS` + 2 lines (one unless it lists several problems),
    each printable and at most `MAX_LINE_CHARS` long, the first naming the file."""
    lines = exc.message_lines()
    assert 1 <= len(lines) <= MAX_LISTED_ERRORS + 2, lines[:3]
    if not isinstance(exc, PromptSetErrors):
        assert len(lines) == 1 and str(exc) == lines[0], str(exc)[:1000]
    for line in lines:
        assert len(line) <= MAX_LINE_CHARS, line[:1000]
        assert not UNPRINTABLE.search(line), ascii(line)
    assert str(path) in lines[0], lines[0]


def check_loader(path: Path, data: bytes) -> None:
    """Write `data` to `path` and load it: it loads, or it fails with a well-formed user error."""
    path.write_bytes(data)
    try:
        load_prompt_set(path)
    except UserError as exc:
        check_error(exc, path)


def check_cli_in_process(path: Path, data: bytes) -> None:
    """`vbench-suite validate` in this process: exit 0 or 2; any other exception fails the test (a traceback)."""
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    check_cli_output(code, err.getvalue(), path)


def check_cli_output(code: int, stderr: str, path: Path) -> None:
    assert code in (0, 2), (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = stderr.splitlines()
    if code == 2:
        assert lines and lines[0].startswith(CLI_PREFIX) and str(path) in lines[0], stderr[:1000]
        assert len(lines) <= MAX_LISTED_ERRORS + 2
        assert max(len(line) for line in lines) <= len(CLI_PREFIX) + MAX_LINE_CHARS
    else:
        assert stderr == ""


FAST = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=2000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def case_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file name reused by every example (hypothesis examples share module-scoped fixtures)."""
    return tmp_path_factory.mktemp("fuzz") / "case.yaml"


@FAST
@given(data=MUTATED)
def test_mutated_suites_load_or_fail_cleanly(case_path: Path, data: bytes) -> None:
    check_loader(case_path, data)


@FAST
@given(data=WELL_FORMED)
def test_odd_values_in_every_field_load_or_fail_cleanly(case_path: Path, data: bytes) -> None:
    check_loader(case_path, data)


@settings(FAST, max_examples=40)
@given(data=st.one_of(MUTATED, WELL_FORMED))
def test_validate_command_exits_0_or_2(case_path: Path, data: bytes) -> None:
    check_cli_in_process(case_path, data)


def run_validate_subprocess(path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "vbench_suite", "validate", str(path)], capture_output=True,
                         text=True, timeout=120)
    check_cli_output(res.returncode, res.stderr, path)


def test_validate_subprocess_sample(tmp_path: Path) -> None:
    rng = random.Random(19)
    for index in range(4):
        path = tmp_path / f"case-{index}.yaml"
        path.write_bytes(random_case(rng))
        run_validate_subprocess(path)


# ------------------------------------------------------------------------------------------------ long runs


@pytest.mark.slow
@LONG
@given(data=st.one_of(MUTATED, MUTATED, WELL_FORMED))
def test_long_hypothesis_run(case_path: Path, data: bytes) -> None:
    check_loader(case_path, data)


CAMPAIGN_CASES = 5000
"""Cases of the counted campaign (`test_long_campaign`), drawn with plain `random` from a fixed seed."""


@pytest.mark.slow
def test_long_campaign(tmp_path: Path) -> None:
    """`CAMPAIGN_CASES` mutated suites through the loader (every 50th also through the CLI in a subprocess); prints
    the figures, and lists every case that crashed or printed a bad message."""
    rng = random.Random(2026)
    path = tmp_path / "case.yaml"
    failures: list[str] = []
    outcomes = {"loaded": 0, "refused": 0}
    slowest = 0.0
    for index in range(CAMPAIGN_CASES):
        data = random_case(rng)
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            load_prompt_set(path)
            outcomes["loaded"] += 1
        except UserError as exc:
            outcomes["refused"] += 1
            try:
                check_error(exc, path)
            except AssertionError as bad:
                failures.append(f"case {index}: bad message: {str(bad)[:200]}")
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point of the campaign
            failures.append(f"case {index}: {type(exc).__name__}: {str(exc)[:200]}")
        slowest = max(slowest, time.perf_counter() - start)
        if index % 50 == 0:
            run_validate_subprocess(path)
    print(f"\nprompt-file fuzz campaign: {CAMPAIGN_CASES} cases, {outcomes['loaded']} loaded, "
          f"{outcomes['refused']} refused, {len(failures)} crashes or bad messages, slowest {slowest:.2f} s")
    assert failures == [], "\n".join(failures[:20])
    assert slowest < 30.0
