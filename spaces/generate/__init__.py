"""The generate tab."""
