# Stand-in for Open-Sora 2.0's configs/diffusion/inference/256px.py: the keys the harness and the stand-in
# script read, with Open-Sora's names and defaults (no model: the stand-in draws its videos).
save_dir = "samples"
seed = 42
batch_size = 1
dtype = "bf16"

cond_type = "t2v"

dataset = dict(type="text")
sampling_option = dict(
    resolution="256px",
    aspect_ratio="16:9",
    num_frames=129,
    num_steps=50,
    seed=None,
)
motion_score = "4"
fps_save = 24
