"""Cache keys and seeds: one recipe, sensitive to everything that changes the output and nothing else."""
from __future__ import annotations

from pathlib import Path

from vbench_suite.keys import derive_seed, generation_key
from vbench_suite.types import Fingerprint, GenerationRequest, make_extra

FP = Fingerprint("toy", "model-a", "1")


def test_key_depends_on_fingerprint_request_and_seed() -> None:
    req = GenerationRequest(prompt_id="p", prompt="a red circle", seed=1)
    key = generation_key(FP, req)
    assert key == generation_key(FP, GenerationRequest(prompt_id="p", prompt="a red circle", seed=1))
    assert key != generation_key(FP, GenerationRequest(prompt_id="p", prompt="a red circle", seed=2))
    assert key != generation_key(Fingerprint("toy", "model-a", "2"), req)
    assert key != generation_key(FP, GenerationRequest(prompt_id="p", prompt="a red circle", seed=1, fps=24))
    with_extra = GenerationRequest(prompt_id="p", prompt="a red circle", seed=1, extra=make_extra({"steps": 20}))
    assert key != generation_key(FP, with_extra)


def test_extra_order_does_not_matter() -> None:
    a = GenerationRequest(prompt_id="p", prompt="x", extra=make_extra({"a": 1, "b": 2}))
    b = GenerationRequest(prompt_id="p", prompt="x", extra=make_extra({"b": 2, "a": 1}))
    assert generation_key(FP, a) == generation_key(FP, b)


def test_conditioning_images_enter_by_content(tmp_path: Path) -> None:
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    one.write_bytes(b"image-bytes")
    two.write_bytes(b"image-bytes")
    req = lambda p: GenerationRequest(prompt_id="p", prompt="x", mode="i2v", images=(str(p),))  # noqa: E731
    assert generation_key(FP, req(one)) == generation_key(FP, req(two))
    two.write_bytes(b"other-bytes")
    assert generation_key(FP, req(one)) != generation_key(FP, req(two))


def test_request_round_trips_through_json_form() -> None:
    req = GenerationRequest(prompt_id="p", prompt="x", mode="hybrid", images=("a.png",), resolution=(320, 240),
                            extra=make_extra({"presenter": "anna", "nested": {"k": [1, 2]}}))
    assert GenerationRequest.from_dict(req.to_dict()) == req


def test_derived_seeds_are_stable_and_distinct() -> None:
    seeds = {derive_seed(0, f"p{i}", s) for i in range(50) for s in range(4)}
    assert len(seeds) == 200
    assert derive_seed(0, "p1", 0) == derive_seed(0, "p1", 0)
    assert derive_seed(0, "p1", 0) != derive_seed(1, "p1", 0)
    assert all(0 <= s < 2**31 for s in seeds)
