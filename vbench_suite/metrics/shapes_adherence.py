"""Metric 'shapes_adherence': does a video of a shapes-world prompt show what the prompt asks for?

Per video, 1.0 when the requested colours, shapes, counts, motions and background are all measured in the pixels
(`vbench_suite.shapes.checker`), else 0.0; the per-attribute answers go into the record's `extra`. Items whose
prompt is not in the shapes-world grammar get no record: the metric does not apply to them.
"""
from __future__ import annotations

from collections.abc import Sequence

from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.metrics.common import record, score_one
from vbench_suite.shapes.checker import check_adherence
from vbench_suite.shapes.grammar import GRAMMAR_VERSION, SceneSpec
from vbench_suite.shapes.parse import parse_prompt
from vbench_suite.types import ScoreRecord
from vbench_suite.video.read import read_video

PROFILE = f"shapes-checker-1/{GRAMMAR_VERSION}"
"""Checker version + grammar version; scores under different profiles are not compared."""


class ShapesAdherence(Metric):
    """Analytic prompt adherence for shapes-world prompts (no learned model, CPU only)."""

    info = MetricInfo(
        name="shapes_adherence", display_name="Shapes adherence", higher_is_better=True, unit="", scope="video",
        description="1 if the video shows the colours, shapes, counts, motions and background its shapes-world "
                    "prompt asks for, else 0 (pixel measurements, robust to blur, noise and compression).")

    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        """One record per item whose prompt parses in the shapes world: value 1.0 / 0.0, or an 'error' record."""
        records: list[ScoreRecord] = []
        for item in items:
            spec = parse_prompt(item.prompt)
            if spec is None:
                continue
            records.append(score_one(self.info, PROFILE, item, lambda item=item, spec=spec: self._one(item, spec)))
        return records

    def _one(self, item: ScoringItem, spec: SceneSpec) -> ScoreRecord:
        """The checker needs the whole video (motion is measured across it); shapes-world videos are small."""
        video = read_video(item.video_path)
        result = check_adherence(video.frames, spec)
        extra = {
            "colour_ok": result.colour_ok, "shape_ok": result.shape_ok, "motion_ok": result.motion_ok,
            "count_ok": result.count_ok, "background_ok": result.background_ok,
            "background": result.background,
            "expected": "; ".join(f"{o.count} {o.colour} {o.shape} {o.motion}" for o in spec.objects),
            "measured": "; ".join(f"{g.count} {g.colour} {g.shape} {g.motion}" for g in result.groups),
            "unexpected_colours": ",".join(result.unexpected_colours),
        }
        return record(self.info, "ok", value=1.0 if result.passed else 0.0, profile=PROFILE, item=item,
                      n=video.num_frames, extra=extra)
