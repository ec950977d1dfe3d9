"""The exception family of the core.

Every error a leader or listener may meet carries a Spanish message (``str(exc)``) fit to show
as it is; developers read the English detail in the logs.
"""


class PallayError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigError(PallayError):
    """Settings that cannot be used; Spanish, for the technician who wrote them."""


class MediaError(PallayError):
    """An upload that cannot become a lesson or prompt; the message is Spanish, for the leader."""


class CatalogError(PallayError):
    """A catalogue change that breaks a rule (unknown lesson, key in use, menu too deep...)."""


class SpeechError(PallayError):
    """Audio or a model the recogniser cannot use."""


class SynthesisError(PallayError):
    """Text-to-speech failed or hung."""


class SyncError(PallayError):
    """A sync, content pack or edge token that cannot be used; the message is Spanish."""


class StatsError(PallayError, ValueError):
    """A statistics question that cannot be asked (a date that is not one...)."""
