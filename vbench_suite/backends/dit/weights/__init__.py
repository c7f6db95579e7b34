"""The shipped dit-local checkpoint (config.json + model.safetensors), package data."""
