"""The codec model: an encoder/decoder family (SEANet waveform or STFT domain) around the residual VQ."""

from rotcodec.model.codec import Codec, CodecOutput
from rotcodec.model.loading import load_model_file, weights_hash
from rotcodec.model.seanet import Decoder, Encoder
from rotcodec.model.stft import StftDecoder, StftEncoder

__all__ = ["Codec", "CodecOutput", "Encoder", "Decoder", "StftEncoder", "StftDecoder", "load_model_file", "weights_hash"]
