"""Video files: writing (`write.py`) and decoding (`read.py`)."""
