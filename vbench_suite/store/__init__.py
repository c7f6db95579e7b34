"""The run store: one folder per run (`run_folder.py`) and an SQLite index across runs (`index.py`)."""
from vbench_suite.store.run_folder import SCHEMA_VERSION, RunFolder

__all__ = ["RunFolder", "SCHEMA_VERSION"]
