"""The inversion tab."""
