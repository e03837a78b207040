"""Errors, sorted by who must act.

`UserError` is for what the person running trellis must fix (a bad spec, a missing model, bad
config); its message says what to do. `TrellisRunError` and its subclasses are run-time failures
that the search records on a node and survives. `FormatError` carries a message meant to be shown
back to the model so it can correct its output.
"""

from __future__ import annotations


class TrellisError(Exception):
    """Base of every error trellis raises on purpose."""


class UserError(TrellisError):
    """A usage mistake: the message says what happened and what to do about it."""


class TrellisRunError(TrellisError):
    """A failure while running (a model call, a sandbox command); recorded, not fatal to a search."""


class ModelError(TrellisRunError):
    """A model backend failed to answer (after its retries)."""


class ContextLengthError(ModelError):
    """The prompt does not fit the model's context window; asking again cannot help."""


class FormatError(TrellisRunError):
    """Model output could not be turned into an action.

    `str(error)` is written for the model: it says what was wrong and what shape is expected.
    """

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class ReplayMissError(TrellisRunError):
    """A replayed run asked for a completion that the cassette does not hold."""
