"""The error types rotcodec raises on bad input (one per kind of input)."""


class FormatError(ValueError):
    """A token file (``.rcq``) or model file is malformed, truncated, corrupt or unsupported.

    Also the one error for bad token data elsewhere: ``.npy`` token files and manifests
    (:mod:`rotcodec.tokenize`, :func:`rotcodec.tokens.load_codes`), language-model ids that
    :func:`rotcodec.tokens.unflatten` cannot invert, and codes outside the codebook.

    Every malformed token file raises this and nothing else, before allocating memory that the
    file's real size cannot justify.
    """


class AudioError(ValueError):
    """An audio input cannot be coded: unreadable, empty, non-finite, or of an unsupported format."""
