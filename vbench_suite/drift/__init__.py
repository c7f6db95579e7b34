"""Silent vendor change detection: the reproducibility probe, the drift tests between two runs of one backend, and
the run selection behind `vbench-suite canary` and `vbench-suite drift`. See docs/drift.md.

`mmd` (permutation tests) and `evidence` (its data types) import numpy only, so the report can use them; anything
that decodes videos or runs a network (LPIPS, I3D) imports torch lazily, inside the function that needs it.
"""
