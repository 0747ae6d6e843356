"""zest-mock: a local, faithful fake of the Zest Partner API (package root; holds only the version)."""

__version__ = "0.1.0"
