"""The error types rotcodec raises on bad input (one per kind of input), and the errors whose
message names an option, worded for the API (``force=True``) or the command line (``--force``).

No imports beyond the standard library: the command line's ``--help`` may use it without torch.
"""

from typing import NamedTuple

__all__ = ["API", "CLI", "AudioError", "FormatError", "NoModel", "OtherModel", "OutputExists", "WordedError",
           "Wording", "worded"]


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


# ----- messages that name an option ----------------------------------------------------------------
class Wording(NamedTuple):
    """How a message names the options a user can change: the API's arguments or the CLI's flags."""

    force: str
    model: str


API = Wording(force="force=True", model="model=PATH")
CLI = Wording(force="--force", model="--model PATH")


class WordedError(Exception):
    """An error whose message names an option, worded for whoever reads it.

    ``template`` names the options as ``{force}`` and ``{model}`` (the fields of :class:`Wording`)
    and the rest as ``fields``; ``str(err)`` is the API's wording (``force=True``), and
    :meth:`worded` gives another (``err.worded(CLI)``: ``--force``). Mixed in before a built-in
    type (``class OutputExists(WordedError, FileExistsError)``), so callers catch what they did.
    """

    def __init__(self, template: str, **fields):
        self.template, self.fields = template, fields
        super().__init__(self.worded(API))

    def worded(self, words: Wording = API) -> str:
        """The message with the options named as ``words`` names them."""
        return self.template.format(**words._asdict(), **self.fields)

    def __reduce__(self):  # the default would call cls(message), which is not the signature
        return _rebuild, (type(self), self.template, self.fields)


def _rebuild(cls, template: str, fields: dict) -> WordedError:
    return cls(template, **fields)


def worded(err: BaseException, words: Wording = API) -> str:
    """``err``'s message as ``words`` names the options (``str(err)`` for other errors)."""
    return err.worded(words) if isinstance(err, WordedError) else str(err)


class OutputExists(WordedError, FileExistsError):
    """An output exists and overwriting it was not asked for (``force``)."""


class NoModel(WordedError, FileNotFoundError):
    """No model was given and none that fits could be found."""


class OtherModel(WordedError, FormatError):
    """Codes made by one model were given to another to decode."""
