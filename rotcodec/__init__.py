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

from rotcodec import tokens
from rotcodec.api import compress, compress_file, decode, decompress, decompress_file, encode, load_model
from rotcodec.coding.streaming import StreamDecoder, StreamEncoder
from rotcodec.config import CodecConfig, QuantizerConfig
from rotcodec.errors import AudioError, FormatError
from rotcodec.model.codec import Codec

__all__ = [
    "Codec", "CodecConfig", "QuantizerConfig", "load_model", "FormatError", "AudioError",
    "compress", "decompress", "compress_file", "decompress_file",
    "encode", "decode", "StreamDecoder", "StreamEncoder", "tokens",
]
__version__ = "0.1.0"
