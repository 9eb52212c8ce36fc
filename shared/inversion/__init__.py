"""Inversion of real images into StyleGAN's latent space, as pure functions over tensors.

Methods (each returns an `InversionResult`):
- `optimize_latent`: W or W+ optimisation (Image2StyleGAN; NVlabs' projector schedule).
- `optimize_wplus_noise`: W+ then noise maps, optionally masked (Image2StyleGAN++).
- `encode`: pSp / e4e / ReStyle encoders; `encode_then_optimize`: the hybrid.
- `pivotal_tuning`: PTI, tuning a private copy of the generator.
Losses and metrics: `perceptual_loss` / `build_lpips` / `FeatureLoss`, `psnr`, `masked_mse`;
identity similarity: `load_arcface` (`IdentityModel`). Nothing here imports gradio.
"""
from shared.inversion.encoder import ENCODER_KINDS, encode, encode_then_optimize, encoder_input
from shared.inversion.identity import ArcFaceIdentity, IdentityModel, arcface_from_state_dict, load_arcface
from shared.inversion.losses import (FeatureLoss, LPIPSLoss, PerceptualLoss, build_lpips, load_vgg16_features,
                                     masked_mse, noise_regularization, perceptual_loss, psnr)
from shared.inversion.optimize import (NoiseOptions, OptimizeOptions, WStats, compute_w_stats, optimize_latent,
                                       optimize_wplus_noise, synthesize, synthesize_with_noises)
from shared.inversion.pti import PTIOptions, pivotal_tuning
from shared.inversion.result import InversionCancelled, InversionResult, InversionStep, Progress, ShouldStop

__all__ = [
    "ArcFaceIdentity", "ENCODER_KINDS", "FeatureLoss", "IdentityModel", "InversionCancelled", "InversionResult",
    "InversionStep", "LPIPSLoss", "NoiseOptions", "OptimizeOptions", "PTIOptions", "PerceptualLoss", "Progress",
    "ShouldStop", "WStats", "arcface_from_state_dict", "build_lpips", "compute_w_stats", "encode",
    "encode_then_optimize", "encoder_input", "load_arcface", "load_vgg16_features", "masked_mse",
    "noise_regularization", "optimize_latent", "optimize_wplus_noise", "perceptual_loss", "pivotal_tuning", "psnr",
    "synthesize", "synthesize_with_noises",
]
