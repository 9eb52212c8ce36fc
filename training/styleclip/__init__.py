"""StyleCLIP at build time: training latent mappers and building global-direction relevance matrices."""
