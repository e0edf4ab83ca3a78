"""rotcodec: a neural audio codec whose residual VQ uses the rotation trick.

Public API::

    import rotcodec
    data = rotcodec.compress(wav, sample_rate, model="model.pt", kbps=6)   # wav [C, T] -> .rcq bytes
    wav, sample_rate = rotcodec.decompress(data, model="model.pt")         # [C, T] at the original rate
    rotcodec.compress_file("talk.wav", "talk.rcq", model="model.pt")       # and decompress_file
    model = rotcodec.load_model("model.pt")          # or rotcodec.Codec(rotcodec.CodecConfig.preset("tiny"))
    codes = model.encode(wav)                          # wav [B, 1, T] -> codes [B, n_q, F]
    wav_hat = model.decode(codes, length=wav.shape[-1])

Tokens as data (see :mod:`rotcodec.tokens` for language-model layouts)::

    codes = rotcodec.encode("talk.flac", kbps=3)       # [C, n_q, F] int64 array (any rate, resampled)
    wav = rotcodec.decode(codes)                       # [C, T] at the model's rate
    ids = rotcodec.tokens.flatten(codes[0], 1024)      # one stream, vocabulary n_q * 1024
    dec = rotcodec.StreamDecoder(model)                # push frames, get final audio (dec.latency_ms)
"""

from __future__ import annotations

import importlib

__all__ = [
    "Codec", "CodecConfig", "QuantizerConfig", "load_model", "FormatError", "AudioError",
    "compress", "decompress", "compress_file", "decompress_file",
    "encode", "decode", "StreamDecoder", "StreamEncoder", "tokens",
]
__version__ = "0.1.0"

# The public names are imported on first use (PEP 562), so that `import rotcodec` (and the command
# line's --help and --version) does not load torch; `from rotcodec import Codec` works as usual.
_LAZY = {
    "Codec": "rotcodec.model.codec", "CodecConfig": "rotcodec.config", "QuantizerConfig": "rotcodec.config",
    "FormatError": "rotcodec.errors", "AudioError": "rotcodec.errors",
    "StreamDecoder": "rotcodec.coding.streaming", "StreamEncoder": "rotcodec.coding.streaming",
    **{name: "rotcodec.api" for name in ("load_model", "compress", "decompress", "compress_file",
                                         "decompress_file", "encode", "decode")},
}


def __getattr__(name: str):
    if name == "tokens":
        return importlib.import_module("rotcodec.tokens")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'rotcodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
