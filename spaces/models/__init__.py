"""The models tab."""
