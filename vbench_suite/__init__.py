"""vbench_suite: benchmark AI video generators side by side."""
__version__ = "0.1.0"
