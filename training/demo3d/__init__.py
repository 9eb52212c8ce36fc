"""Build-time code of the demo 3D generator: distillation of the portrait renderer into a small EG3D
(`distill3d`) and its measurement (`evaluate3d`)."""
