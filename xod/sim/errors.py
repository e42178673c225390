"""The XAPI failure that every simulated message raises: `[CODE, param, ...]` on the wire."""

from __future__ import annotations


class XapiFailure(Exception):
    """An XAPI error: a code and its string parameters, as `ErrorDescription` carries them."""

    def __init__(self, code: str, *params: object) -> None:
        self.code = code
        # xapi stringifies every parameter (ints, refs, floats) in ErrorDescription.
        self.params = [str(p) for p in params]
        super().__init__(code, *self.params)

    @property
    def description(self) -> list[str]:
        return [self.code, *self.params]

    def __str__(self) -> str:
        return repr(self.description)
