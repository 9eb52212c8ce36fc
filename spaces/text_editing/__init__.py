"""The text editing tab."""
