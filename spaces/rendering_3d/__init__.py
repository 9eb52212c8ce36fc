"""The rendering 3d tab."""
