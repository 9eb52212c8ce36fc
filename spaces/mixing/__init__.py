"""The mixing tab."""
