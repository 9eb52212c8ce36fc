"""The reposing tab."""
