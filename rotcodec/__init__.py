"""rotcodec: a neural audio codec whose residual VQ uses the rotation trick.

Public API::

    import rotcodec
    data = rotcodec.compress(wav, sample_rate, model="model.pt", kbps=6)   # wav [C, T] -> .rcq bytes
    wav, sample_rate = rotcodec.decompress(data, model="model.pt")         # [C, T] at the original rate
    rotcodec.compress_file("talk.wav", "talk.rcq", model="model.pt")       # and decompress_file
    model = rotcodec.load_model("model.pt")          # or rotcodec.Codec(rotcodec.CodecConfig.preset("tiny"))
    codes = model.encode(wav)                          # wav [B, 1, T] -> codes [B, n_q, F]
    wav_hat = model.decode(codes, length=wav.shape[-1])
"""

from rotcodec.api import compress, compress_file, decompress, decompress_file, load_model
from rotcodec.config import CodecConfig, QuantizerConfig
from rotcodec.errors import AudioError, FormatError
from rotcodec.model.codec import Codec

__all__ = [
    "Codec", "CodecConfig", "QuantizerConfig", "load_model", "FormatError", "AudioError",
    "compress", "decompress", "compress_file", "decompress_file",
]
__version__ = "0.1.0"
