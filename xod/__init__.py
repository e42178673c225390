"""xod: a management daemon for Xen / XCP-ng pools, wire-compatible with Xen Orchestra's API."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml's version is the only one: everything else reads this.
    __version__ = version("xod")
except PackageNotFoundError:  # a source tree on sys.path without `pip install`
    __version__ = "0+unknown"
