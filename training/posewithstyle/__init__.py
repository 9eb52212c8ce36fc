"""Pose with Style on the demo world at build time: the trainer of a small reposing generator and
coordinate-completion model on renderer pairs (`train_demo`) and its measurement against the renderer's
true target views (`measure`). The networks and the method are `shared.archs.posewithstyle` and
`shared.posewithstyle`; the demo world's IUV maps are `shared.portraits_iuv`."""
