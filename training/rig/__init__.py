"""StyleRig at build time: the self-supervised RigNet trainer (`train`), the differentiable face
models that read the controls off images (`estimator`) and the rig's measurement (`evaluate`).
The rig itself (architecture, edit, files) is `shared.rig`."""
