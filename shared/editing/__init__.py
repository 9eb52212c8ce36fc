"""Latent editing methods as pure functions over a generator: linear directions (InterFaceGAN,
GANSpace, SeFa) in `shared.editing.directions` and StyleSpace channel edits in
`shared.editing.stylespace`. Nothing here imports gradio."""
