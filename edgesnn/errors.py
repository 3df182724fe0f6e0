"""The one error type a user sees: a single line that says what is wrong and where."""


class EdgesnnError(Exception):
    """Bad input or a broken artefact; the CLI prints it as one line and exits non-zero."""
