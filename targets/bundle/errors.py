"""The errors of the export format: a bundle that cannot be trusted, and an op that is not valid."""

from __future__ import annotations

__all__ = ["BundleError", "NotABundleError", "SpecError", "ExportError"]


class BundleError(ValueError):
    """An export directory that cannot be used: missing, tampered, truncated, or of another format.

    ``problems`` lists each problem (a file, a manifest field, a table) in one line; the message
    starts with the bundle's path. The command line maps this error to exit status 3.
    """

    def __init__(self, message: str, problems: "list[str] | None" = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class NotABundleError(BundleError):
    """The path is not an hwsnn bundle at all (missing, a file, no manifest, another format, an
    unsupported version): a wrong argument rather than a damaged bundle (exit status 2)."""


#: the name of :class:`BundleError` in hwsnn 0.3 - 0.5 (``sim.ExportError``, ``quant.ExportError``)
ExportError = BundleError


class SpecError(BundleError):
    """An op description whose fields or tables are not valid (a wrong type, a value outside its
    range, an inconsistent shape), each problem naming the layer and the field."""
