"""StyleCLIP (Patashnik et al., "StyleCLIP: Text-Driven Manipulation of StyleGAN Imagery", ICCV 2021;
orpatashnik/StyleCLIP): global directions, the latent mapper and latent optimisation, in PyTorch,
for any StyleGAN2 generator of the registry and any CLIP that open_clip builds."""
