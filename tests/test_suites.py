"""Prompt sets: the shipped suites load, and every kind of malformed file names its file, line and field."""
from __future__ import annotations

import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vbench_suite.errors import MAX_LINE_CHARS, ConfigError, PromptSetError, UnknownNameError
from vbench_suite.shapes import parse_prompt, render
from vbench_suite.suites import (MAX_ERROR_LINE_CHARS, SUITES_ENV, PromptSetErrors, available_suites,
                                 load_prompt_set, load_suite, parse_shapes_ref, resolve_image)

STANDARD_CATEGORIES = {"motion_complexity", "identity_preservation", "scene_complexity", "talking_head",
                       "keyframe_transition", "on_screen_text", "physics"}


def test_smoke_suite() -> None:
    suite = load_suite("smoke")
    assert suite.name == "smoke" and suite.version == "1.0"
    assert 6 <= len(suite.items) <= 10
    assert suite.fps == 8 and suite.resolution == (64, 64) and suite.fvd_reference == "shapes-world"
    assert all(item.shapes for item in suite.items)
    assert all(item.duration_s * suite.fps == 16 for item in suite.items)
    assert any(item.mode in ("i2v", "keyframes") and item.image or item.first_frame for item in suite.items)


def test_standard_suite() -> None:
    suite = load_suite("standard")
    assert suite.version == "2026.11"
    assert len(suite.items) >= 120
    categories = set(suite.categories())
    assert STANDARD_CATEGORIES <= categories
    assert any(c.startswith("shapes_") for c in categories)
    # Shapes-world items are exactly the shapes_* categories: no real-world prompt parses as a shapes prompt.
    assert {i.category.startswith("shapes_") for i in suite.items if i.shapes} == {True}
    assert all(i.shapes for i in suite.items if i.category.startswith("shapes_"))
    modes = {i.mode for i in suite.items if i.category == "identity_preservation"}
    assert modes == {"i2v", "hybrid"}
    assert all(i.presenter for i in suite.items if i.category == "talking_head")
    assert all(i.first_frame for i in suite.items if i.category == "keyframe_transition")
    assert {i.duration_s for i in suite.items} <= {5.0, 8.0, 10.0}
    assert sum("known_hard" in i.tags for i in suite.items) >= 26
    assert len({i.id for i in suite.items}) == len(suite.items)


def test_suite_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"smoke", "standard"} <= set(available_suites())
    with pytest.raises(UnknownNameError, match="Did you mean 'smoke'"):
        load_suite("smok")
    # $VBENCH_PROMPT_SETS is searched first and can shadow a shipped name.
    (tmp_path / "smoke.yaml").write_text(_minimal("name: mine\n"))
    (tmp_path / "extra.yaml").write_text(_minimal("name: extra\n"))
    monkeypatch.setenv(SUITES_ENV, str(tmp_path))
    assert load_suite("smoke").name == "mine"
    assert "extra" in available_suites()
    assert load_suite(str(tmp_path / "extra.yaml")).name == "extra"
    with pytest.raises(ConfigError):
        load_suite(str(tmp_path / "missing.yaml"))


def _minimal(head: str = "name: t\n") -> str:
    return head + textwrap.dedent("""\
        version: "1"
        prompts:
          - id: a
            text: a red circle moves left on a black background
            category: motion
        """)


def test_minimal_file_uses_builtin_defaults(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(_minimal())
    suite = load_prompt_set(path)
    assert suite.fps == 24 and suite.resolution == (1280, 720) and suite.fvd_reference is None
    item = suite.items[0]
    assert (item.mode, item.duration_s, item.tags, item.shapes, item.line) == ("t2v", 5.0, (), True, 4)


def _header(defaults: str = "") -> str:
    return 'name: t\nversion: "1"\n' + defaults + "prompts:\n"


# Each case: (file text, line of the problem, field named, words in the message).
BAD_FILES = {
    "unknown_top_key": ('name: t\nversion: "1"\ncolour: red\nprompts: []\n', 3, "colour", "unknown key"),
    "unknown_item_key": (_header() + "  - id: a\n    text: hello\n    category: c\n    seed: 3\n", 7, "seed",
                         "unknown key"),
    "missing_text": (_header() + "  - id: a\n    category: c\n", 4, "text", "missing"),
    "missing_version": ("name: t\nprompts:\n  - {id: a, text: b, category: c}\n", 1, "version", "missing"),
    "version_not_string": ("name: t\nversion: 1.0\nprompts:\n  - {id: a, text: b, category: c}\n", 2, "version",
                           "string"),
    "duration_not_number": (_header() + "  - id: a\n    text: hi\n    category: c\n    duration_s: long\n", 7,
                            "duration_s", "number"),
    "duration_negative": (_header() + "  - id: a\n    text: hi\n    category: c\n    duration_s: -2\n", 7,
                          "duration_s", "positive"),
    "default_duration_zero": (_header("defaults:\n  duration_s: 0\n") + "  - {id: a, text: b, category: c}\n", 4,
                              "duration_s", "positive"),
    "bad_mode": (_header() + "  - id: a\n    text: hi\n    category: c\n    mode: txt2vid\n", 7, "mode",
                 "t2v, i2v, hybrid, keyframes"),
    "i2v_without_image": (_header() + "  - id: a\n    text: hi\n    category: c\n    mode: i2v\n", 7, "image",
                          "needs an image"),
    "image_in_t2v": (_header() + "  - id: a\n    text: hi\n    category: c\n    image: x.png\n", 7, "image",
                     "mode"),
    "image_file_missing": (_header() + "  - id: a\n    text: hi\n    category: c\n    mode: i2v\n"
                           "    image: pictures/nope.png\n", 8, "image", "not found"),
    "bad_shapes_ref": (_header() + "  - id: a\n    text: hi\n    category: c\n    mode: keyframes\n"
                       "    first_frame: 'shapes:a cat on a sofa#frame=0'\n", 8, "first_frame",
                       "not a shapes-world prompt"),
    "shapes_ref_frame_range": (_header() + "  - id: a\n    text: hi\n    category: c\n    mode: i2v\n"
                               "    image: 'shapes:a red circle moves left#frame=99'\n", 8, "image", "frame"),
    "duplicate_id": (_header() + "  - {id: a, text: b, category: c}\n  - {id: b, text: b, category: c}\n"
                     "  - {id: a, text: b, category: c}\n", 6, "id", "duplicate prompt id 'a'"),
    "duplicate_key": (_header() + "  - id: a\n    text: b\n    text: c\n    category: c\n", 6, "text",
                      "duplicate key"),
    "tags_not_list": (_header() + "  - id: a\n    text: b\n    category: c\n    tags: hard\n", 7, "tags", "list"),
    "bad_resolution": (_header("defaults:\n  resolution: big\n") + "  - {id: a, text: b, category: c}\n", 4,
                       "resolution", "WIDTHxHEIGHT"),
    "bad_id": (_header() + "  - id: 'a b'\n    text: b\n    category: c\n", 4, "id", "must match"),
    "empty_prompts": (_header() + "", 3, "prompts", "non-empty"),
    "item_not_mapping": (_header() + "  - just a string\n", 4, None, "mapping"),
    # the unclosed bracket's line (5), not where PyYAML noticed (6)
    "yaml_syntax": (_header() + "  - id: a\n    text: [unclosed\n    category: c\n", 5, None,
                    "closing bracket missing"),
    "yaml_bad_indent": (_header() + "  - id: a\n     text: b\n", 5, None, "YAML syntax"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_files_name_file_line_and_field(case: str, tmp_path: Path) -> None:
    text, line, field, words = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    err = info.value
    message = str(err)
    assert path.name in message and f":{line}:" in message, message
    assert err.line == line, message
    if field is not None:
        assert err.field == field and f"'{field}'" in message, message
    assert words in message, message


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(PromptSetError, match="empty"):
        load_prompt_set(empty)
    with pytest.raises(PromptSetError, match="cannot read"):
        load_prompt_set(tmp_path / "absent.yaml")


def test_relative_image_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img" / "face.png")
    path = tmp_path / "t.yaml"
    path.write_text(_header() + "  - id: a\n    text: the person waves\n    category: c\n    mode: hybrid\n"
                    "    image: img/face.png\n")
    item = load_prompt_set(path).items[0]
    assert item.image == str((tmp_path / "img" / "face.png").resolve())
    assert resolve_image(item.image, tmp_path / "cache") == Path(item.image)


def test_shapes_image_refs_render_into_the_cache(tmp_path: Path) -> None:
    ref = "shapes:two blue squares move up on a white background#frame=15&seed=3"
    parsed = parse_shapes_ref(ref)
    assert (parsed.frame, parsed.seed) == (15, 3)
    png = resolve_image(ref, tmp_path, (96, 64))
    assert png.parent == tmp_path and png.suffix == ".png"
    pixels = np.asarray(Image.open(png).convert("RGB"))
    spec = parse_prompt("two blue squares move up on a white background")
    assert np.array_equal(pixels, render(spec, 16, (96, 64), seed=3)[15])
    assert resolve_image(ref, tmp_path, (96, 64)) == png  # cached
    assert resolve_image(ref, tmp_path, (64, 64)) != png  # resolution is part of the name
    with pytest.raises(ConfigError):
        resolve_image("shapes:a dog#frame=0", tmp_path)
    with pytest.raises(ConfigError):
        resolve_image(str(tmp_path / "missing.png"), tmp_path)


def test_every_shipped_image_ref_resolves(tmp_path: Path) -> None:
    for name in ("smoke", "standard"):
        suite = load_suite(name)
        for item in suite.items:
            for ref in (item.image, item.first_frame, item.last_frame):
                if ref is not None:
                    assert resolve_image(ref, tmp_path, (64, 64)).is_file()


THREE_ERRORS = (_header() +
                "  - id: a\n    text: hi\n    category: c\n    duration_s: -3\n"   # line 7: duration_s
                "  - id: b\n    text: hi\n    category: Bad Category\n"              # line 10: category
                "  - id: c\n    text: hi\n    category: c\n    colour: red\n")      # line 14: unknown key


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_ERRORS)
    with pytest.raises(PromptSetErrors) as info:
        load_prompt_set(path)
    err = info.value
    assert [(e.line, e.field) for e in err.errors] == [(7, "duration_s"), (10, "category"), (14, "colour")]
    lines = str(err).splitlines()
    assert lines[0] == f"{path}: 3 problems"
    assert lines[1].startswith(f"{path}:7: field 'duration_s'") and "positive" in lines[1]
    assert lines[2].startswith(f"{path}:10: field 'category'") and "must match" in lines[2]
    assert lines[3].startswith(f"{path}:14: field 'colour'") and "unknown key" in lines[3]
    assert (err.line, err.field) == (7, "duration_s")  # still usable as a single PromptSetError


def test_problem_lines_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    ids = "".join(f"  - id: 'bad id {i}'\n    text: hi\n    category: c\n" for i in range(60))
    path.write_text(_header() + ids + "  - id: x\n    text: hi\n    category: '" + "Z" * 5000 + "'\n")
    with pytest.raises(PromptSetErrors) as info:
        load_prompt_set(path)
    assert len(info.value.errors) == 61
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "... and 11 more problem(s)"
    assert max(len(line) for line in lines) <= MAX_ERROR_LINE_CHARS


@pytest.mark.parametrize("quote", ['"', "'"])
def test_unclosed_quote_points_at_the_opening_quote(quote: str, tmp_path: Path) -> None:
    path = tmp_path / "quote.yaml"
    path.write_text(_header() + f"  - id: a\n    text: {quote}a red circle\n    category: c\n"
                    "  - id: b\n    text: fine\n    category: c\n")
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    assert info.value.line == 5  # the line of the opening quote, not the end of the file (10)
    assert f"{path}:5:" in str(info.value) and "closing quote missing" in str(info.value)
    assert "column 11" in str(info.value) and "noticed on line" in str(info.value)


def test_validate_cli_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "three.yaml"
    path.write_text(THREE_ERRORS)
    res = subprocess.run([sys.executable, "-m", "vbench_suite", "validate", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 4 and "3 problems" in lines[0]
    assert [line.split(":")[1] for line in lines[1:]] == ["7", "10", "14"]


# ------------------------------------------------------------------ issue 19: files that used to crash the loader


def _laughs(levels: int) -> str:
    """A billion laughs under defaults.resolution: each anchor is nine aliases of the previous one."""
    parts = ["&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    parts += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return 'name: t\nversion: "1"\ndefaults:\n  resolution: [' + ", ".join(parts) + "]\n" \
        "prompts:\n  - {id: a, text: b, category: c}\n"


def _item(extra: str) -> str:
    return _header() + "  - id: a\n    text: b\n    category: c\n" + extra


# Each case: (file bytes, line of the problem, field named (None: none can be), words in the message).
CRASHERS = {
    "non_utf8": (b'name: caf\xe9\nversion: "1"\nprompts:\n  - {id: a, text: b, category: c}\n', 1, "name",
                 "not UTF-8"),
    "int_tag_not_int": (_header().encode() + b"  - id: a\n    text: !!int abc\n    category: c\n", 5, "text",
                        "not a valid !!int"),
    "int_over_4300_digits": (_item("    duration_s: " + "9" * 5000 + "\n").encode(), 7, "duration_s",
                             "at most 4,300 digits"),
    "hex_int_too_long_to_print": (_item("    duration_s: 0x" + "f" * 4500 + "\n").encode(), 7, "duration_s",
                                  "an integer of about 5,418 digits"),
    "sexagesimal_int_too_long_to_print": (_item("    duration_s: 1" + ":59" * 3000 + "\n").encode(), 7, "duration_s",
                                          "an integer of about"),
    "shapes_frame_digits": (_item('    mode: i2v\n    image: "shapes:a red circle moves left on a black background'
                                  '#frame=' + "9" * 5000 + '"\n').encode(), 8, "image", "must look like"),
    "unknown_tag": (_header().encode() + b"  - id: a\n    text: !foo b\n    category: c\n", 5, "text",
                    "unknown YAML tag '!foo'"),
    "python_tag": (_header().encode() + b"  - id: a\n    text: !!python/object/apply:os.system [ls]\n"
                   b"    category: c\n", 5, "text", "unknown YAML tag"),
    "bad_base64": (_header().encode() + b"  - id: a\n    text: !!binary 'a'\n    category: c\n", 5, "text",
                   "not a valid !!binary"),
    "non_ascii_base64": (_header().encode() + "  - id: a\n    text: !!binary 'é'\n    category: c\n".encode(), 5,
                         "text", "not a valid !!binary"),
    "int_tag_empty": (_header().encode() + b"  - id: a\n    text: !!int ''\n    category: c\n", 5, "text",
                      "not a valid !!int"),
    "timestamp_tag": (_header().encode() + b"  - id: a\n    text: !!timestamp x\n    category: c\n", 5, "text",
                      "not a valid !!timestamp"),
    "bool_tag": (_header().encode() + b"  - id: a\n    text: !!bool abc\n    category: c\n", 5, "text",
                 "true or false"),
    "deep_nesting": (_item("    tags: " + "[" * 500 + "]" * 500 + "\n").encode(), 7, "tags", "nested more than"),
    "deep_block_nesting": (("name: t\nx:" + "".join("\n" + "  " * (i + 1) + "k:" for i in range(400)) + " v\n")
                           .encode(), 21, "k", "nested more than"),
    "billion_laughs": (_laughs(9).encode(), 4, "resolution", "more than 100,000 YAML values"),
    "six_level_laughs": (_laughs(6).encode(), 4, "resolution", "more than 100,000 YAML values"),
    "recursive_alias": (_item("    tags: &t [a, *t]\n").encode(), 7, "tags", "recursive"),
    "too_many_aliases": (_item("    tags: [&s x, " + ", ".join(["*s"] * 1001) + "]\n").encode(), 7, "tags",
                         "more than 1,000 aliases"),
    "long_value": (_item("    presenter: '" + "p" * 100_000 + "'\n").encode(), 7, "presenter",
                   "100,000 characters"),
    "control_character": (_header().encode() + b"  - id: a\x01b\n    text: b\n    category: c\n", 4, "id",
                          "control character U+0001 at column 10"),
    "escaped_nul_in_path": (_item('    mode: i2v\n    image: "x\\0y.png"\n').encode(), 8, "image",
                            "not a usable file path"),
    "value_tag_is_a_string": (_item("    presenter: =\n    mode: t2v\n    colour: red\n").encode(), 9, "colour",
                              "unknown key"),
    "merge_key_is_a_key": (_item("    <<: {mode: t2v}\n").encode(), 7, "<<", "unknown key"),
    "resolution_digits": (_header("defaults:\n  resolution: " + "9" * 5000 + "x1\n").encode()
                          + b"  - {id: a, text: b, category: c}\n", 4, "resolution", "WIDTHxHEIGHT"),
    "infinite_duration": (_item("    duration_s: .inf\n").encode(), 7, "duration_s", "at most 3600 seconds"),
}


@pytest.mark.parametrize("case", sorted(CRASHERS))
def test_files_that_crashed_the_loader_are_one_bounded_line(case: str, tmp_path: Path) -> None:
    data, line, field, words = CRASHERS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    err, message = info.value, str(info.value)
    assert not isinstance(err, PromptSetErrors), message[:2000]
    assert "\n" not in message and len(message) <= MAX_LINE_CHARS, message[:2000]
    assert message.startswith(f"{path}:{line}:") and err.line == line, message
    assert err.field == field and (field is None or f"field '{field}'" in message), message
    assert words in message[len(str(path)):], message


def test_billion_laughs_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    # 476 bytes that expand to 9 ** 9 (387 million) strings: the issue saw 47 s and 3.4 GB before a MemoryError
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(9))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(PromptSetError, match="more than 100,000 YAML values"):
            load_prompt_set(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5.0
    assert peak < 50 * 1024 * 1024


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(_item("    presenter: '" + "x y" * 1_700_000 + "'\n"))  # the 5 MB id
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    assert str(info.value) == f"{path}: file is larger than 2 MiB, too large for a prompt set; split it into " \
                              "several files"


def test_long_values_are_shortened_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "longid.yaml"
    path.write_text(_header() + "  - id: '" + "x y" * 3000 + "'\n    text: b\n    category: c\n")
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    message = str(info.value)
    assert len(message) < 300 and "(9,000 characters) must match" in message, message


def test_control_characters_in_messages_are_escaped(tmp_path: Path) -> None:
    # escapes in a double-quoted string are valid YAML; echoing them must not break the line or the terminal
    path = tmp_path / "ctrl.yaml"
    path.write_text(_header() + '  - id: "a\\nb\\e[31m\\u2028"\n    text: b\n    category: c\n')
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(path)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message and "\u2028" not in message
    assert "'a\\nb\\x1b[31m\\u2028'" in message


def test_errors_stay_separate_after_a_value_fails_to_build(tmp_path: Path) -> None:
    # a failed !!int must not leave the YAML constructor half-way, spoiling the next values
    path = tmp_path / "two.yaml"
    path.write_text(_header() + "  - id: a\n    text: !!int abc\n    category: c\n"
                    "  - id: b\n    text: fine\n    category: c\n    duration_s: !!float x\n"
                    "  - id: c\n    text: fine\n    category: c\n")
    with pytest.raises(PromptSetErrors) as info:
        load_prompt_set(path)
    assert [(e.line, e.field) for e in info.value.errors] == [(5, "text"), (10, "duration_s")]


def test_cli_prints_any_user_error_as_bounded_escaped_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from vbench_suite.cli import print_user_error
    from vbench_suite.errors import UserError

    print_user_error(UserError("bad value 'a\nTraceback (most recent call last):\x1b[2J'" + "z" * 10_000))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b[2J" in err
    assert len(err.strip()) <= len("vbench-suite: error: ") + MAX_LINE_CHARS


def test_validate_cli_crashers_exit_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for case in ("non_utf8", "timestamp_tag", "deep_nesting", "six_level_laughs"):
        path = tmp_path / f"{case}.yaml"
        path.write_bytes(CRASHERS[case][0])
        res = subprocess.run([sys.executable, "-m", "vbench_suite", "validate", str(path)], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
        assert res.stderr.count("\n") == 1 and f"{path}:" in res.stderr
        assert len(res.stderr) <= len("vbench-suite: error: ") + MAX_LINE_CHARS + 1
