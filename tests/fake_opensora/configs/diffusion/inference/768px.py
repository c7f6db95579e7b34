# Stand-in for Open-Sora 2.0's configs/diffusion/inference/768px.py: inherits the 256px config (mmengine style).
_base_ = [
    "256px.py",
]

sampling_option = dict(
    resolution="768px",
)
