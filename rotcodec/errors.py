"""The error types rotcodec raises on bad input (one per kind of input)."""


class FormatError(ValueError):
    """A token file (``.rcq``) or model file is malformed, truncated, corrupt or unsupported.

    Every malformed token file raises this and nothing else, before allocating memory that the
    file's real size cannot justify.
    """


class AudioError(ValueError):
    """An audio input cannot be coded: unreadable, empty, non-finite, or of an unsupported format."""
