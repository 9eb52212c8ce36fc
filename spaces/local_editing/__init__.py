"""The local editing tab."""
