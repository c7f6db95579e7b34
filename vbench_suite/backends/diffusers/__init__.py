"""The `diffusers` backend family: open video models run through Hugging Face diffusers on this machine.

Modules: `families` (which pipelines, what each mode accepts), `loading` (finding the model on disk, loading it),
`fingerprint` (the model's content identity), `devices` (device choice, synchronisation, memory), `timing` (stage
and step latencies), `backend` (the `Backend` itself). Importing this package imports neither torch nor diffusers.
"""
