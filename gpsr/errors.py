"""The one error type users see: a one-line message that names the culprit."""


class GpsrError(ValueError):
    """Bad input or an impossible request; the CLI prints it as one line, without a traceback."""
