"""The codec model: SEANet/DAC-style encoder and decoder around the residual VQ."""

from rotcodec.model.codec import Codec, CodecOutput
from rotcodec.model.loading import load_model_file, weights_hash
from rotcodec.model.seanet import Decoder, Encoder

__all__ = ["Codec", "CodecOutput", "Encoder", "Decoder", "load_model_file", "weights_hash"]
