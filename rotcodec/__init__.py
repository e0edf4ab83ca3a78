"""rotcodec: a neural audio codec whose residual VQ uses the rotation trick.

Public API::

    import rotcodec
    model = rotcodec.load_model("model.pt")          # or rotcodec.Codec(rotcodec.CodecConfig.preset("tiny"))
    codes = model.encode(wav)                          # wav [B, 1, T] -> codes [B, n_q, F]
    wav_hat = model.decode(codes, length=wav.shape[-1])
"""

from rotcodec.config import CodecConfig, QuantizerConfig
from rotcodec.errors import AudioError, FormatError
from rotcodec.model.codec import Codec
from rotcodec.model.loading import load_model_file as load_model

__all__ = ["Codec", "CodecConfig", "QuantizerConfig", "load_model", "FormatError", "AudioError"]
__version__ = "0.1.0"
