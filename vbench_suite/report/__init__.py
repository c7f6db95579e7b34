"""Reports: comparison tables, plots, break-even economics and run-to-run regression. Never imports torch.

Public entry points (imported lazily so `import vbench_suite.report` stays cheap and matplotlib-free):

    write_report(run_dir, out_dir=None, compare=None, alpha=0.05, seed=0) -> Path   # report.html (report.md beside it)
    write_breakeven(result, out_dir) -> Path
    load_run(run_dir) -> RunData
    compare_runs(current, baseline, alpha=0.05, seed=0) -> Regression
    compute_breakeven(inputs, volumes=None) -> BreakEven
"""
from __future__ import annotations

from typing import Any

__all__ = ["write_report", "write_breakeven", "load_run", "compare_runs", "compute_breakeven", "BreakEvenInputs"]

_WHERE = {"write_report": "build", "write_breakeven": "build", "load_run": "load", "compare_runs": "regression",
          "compute_breakeven": "economics", "BreakEvenInputs": "economics"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f"vbench_suite.report.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'vbench_suite.report' has no attribute '{name}'")
