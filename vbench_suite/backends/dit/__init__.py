"""The built-in latent video Diffusion Transformer (backend `dit-local`): autoencoder, DiT, frozen text encoder,
flow-matching sampler, training. Importing this package does not import torch (the CLI reads `config` only).

See docs/dit.md.
"""
