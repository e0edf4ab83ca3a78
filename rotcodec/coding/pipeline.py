"""Audio <-> ``.rcq`` through a model: headers, validation, and the streaming pipelines.

Compression: audio blocks ``[C, n]`` at the input rate -> :func:`resample_stream` to the model
rate -> :class:`~rotcodec.coding.conditioning.ConditionStream` (per gain block of
``GAIN_FRAMES`` frames: DC removed, level brought to -26 dBFS, one int8 gain code per channel and
block) -> :func:`encode_stream` (chunks with context) -> codes ``[C, n_q, F]`` and gains
``[C, B]`` -> container. :func:`encode_audio` is that path, the one every encoder of audio
(compress, ``encode``, tokenize, eval) goes through; ``condition=False`` skips the conditioning.
Decompression: container -> header checked against the model (before anything is decoded) ->
codes -> :func:`decode_stream` -> gains divided out (:func:`~rotcodec.coding.conditioning.apply_gains`,
``inverse=True``; none for files without gains) -> :func:`resample_stream` back to the original
rate -> exactly the original number of samples.

Memory is bounded by the chunk and segment sizes plus the codes themselves (an hour of 6 kbps
speech is 2.2 M codes, 17 MB as int64), never by the length of the audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import IO

import torch

from rotcodec.checks import is_int
from rotcodec.coding.chunks import DEFAULT_CHUNK_FRAMES, decode_stream, encode_stream, encoder_context_frames
from rotcodec.coding.conditioning import GAIN_FRAMES, MAX_DB, MIN_DB, STEP_DB, ConditionStream, apply_gains, num_blocks
from rotcodec.coding.progress import Progress
from rotcodec.coding.resampling import check_resampling, resample_stream, resampled_length, take
from rotcodec.errors import AudioError, FormatError, OtherModel
from rotcodec.io.container import PAYLOAD_ENTROPY, Header, read_header, read_rcq_gains, write_rcq
from rotcodec.model.codec import MODEL_VERSION
from rotcodec.model.loading import weights_hash
from rotcodec.quantize.codes import check_codes
from rotcodec.text import counted

__all__ = [
    "model_id", "code_bits", "other_model", "check_header", "check_beam", "check_gains", "encode_audio",
    "encode_to_rcq", "context_model_for", "coding_fields", "read_checked", "decode_rcq", "ungain_stream",
]

MAX_CHANNELS = 64  # the container's limit


def model_id(model) -> str:
    """The id written in headers: ``"<config name>@<model format version>"``, e.g. ``"tiny@1"``."""
    name = "".join(ch if ch.isprintable() else "?" for ch in model.config.name)[:60] or "model"
    return f"{name}@{MODEL_VERSION}"


def code_bits(model) -> int:
    """Bits per code in the file: ``ceil(log2(codebook_size))`` (exact for powers of two)."""
    return max(1, math.ceil(math.log2(model.config.quantizer.codebook_size) - 1e-12))


def other_model(what: str, made_by: str, made_hash: str | None, used: str, used_hash: str,
                given: bool) -> OtherModel:
    """The error for ``what`` (``"this file"``) that cannot be decoded: model ``made_by`` (weights
    ``made_hash``) made it, not ``used`` (weights ``used_hash``). ``given``: the caller named
    ``used``; otherwise it is the bundled model tried for want of one, and the message says no model
    was given. Either way it says how to pass the right one (``model=PATH``, ``--model PATH``)."""
    made = f"{what} was made by model {made_by!r} (weights {made_hash or 'unknown'})"
    if given:
        return OtherModel("{made}, not by the model given ({used!r}, weights {used_hash}); "
                          "decode it with the model that made it ({model})", made=made, used=used, used_hash=used_hash)
    return OtherModel("{made}; no model was given, and the bundled model {used!r} (weights {used_hash}) did not "
                      "make it; pass the model that made it ({model})", made=made, used=used, used_hash=used_hash)


def check_header(header: Header, model, model_hash: str | None = None, given: bool = True) -> None:
    """Raise :class:`FormatError` unless ``model`` can decode a file with ``header``.

    Checks the weights hash, then every field the model fixes (sample rate, bits, n_q, frame
    rate), then that ``frames`` and ``length`` agree (so a header cannot claim a length its
    codes do not cover) and that the original rate can be resampled to. ``given``: the caller
    chose ``model`` (False: a bundled model tried because none was given), for the message.
    """
    model_hash = weights_hash(model) if model_hash is None else model_hash
    if header.model_hash != model_hash:
        raise other_model("this file", header.model, header.model_hash, model_id(model), model_hash, given)
    problems = []
    if header.sample_rate != model.sample_rate:
        problems.append(f"sample rate {header.sample_rate} Hz, the model's is {model.sample_rate} Hz")
    if header.bits != code_bits(model):
        problems.append(f"{header.bits} bits per code, the model's codes take {code_bits(model)}")
    if header.n_q > model.n_q:
        problems.append(f"{counted(header.n_q, 'stage')}, the model has {model.n_q}")
    if not math.isclose(header.frame_rate, model.frame_rate, rel_tol=1e-9):
        problems.append(f"frame rate {header.frame_rate:g}, the model's is {model.frame_rate:g}")
    if problems:
        raise FormatError("the .rcq header contradicts the model: " + "; ".join(problems))
    if header.length < 1:
        raise FormatError("invalid .rcq file: it holds no audio (length 0)")
    try:
        check_resampling(model.sample_rate, header.original_sample_rate)
    except AudioError as err:
        raise FormatError(f"invalid .rcq header: {err}") from None
    model_length = resampled_length(header.length, header.original_sample_rate, model.sample_rate)
    expected = math.ceil(model_length / model.hop_length)
    if header.frames != expected:
        raise FormatError(
            f"invalid .rcq header: {header.frames} frames cannot hold {header.length} samples at "
            f"{header.original_sample_rate} Hz (that takes {expected} frames)")


def check_beam(beam) -> int | None:
    """``beam`` (code paths the encoder keeps per frame) as an int >= 1; None stays None (the
    model's own setting, ``config.quantizer.beam``)."""
    if beam is None:
        return None
    if not is_int(beam) or beam < 1:
        raise ValueError(f"beam must be an integer >= 1, got {beam!r}")
    return beam


def check_gains(gains, channels: int, frames: int, gain_frames: int) -> torch.Tensor:
    """Gain codes ``[C, B]`` checked against ``channels``, ``frames`` and ``gain_frames``, as an
    int8 tensor: FormatError unless ``B == ceil(frames / gain_frames)`` and every code lies in the
    range the encoder writes (``MIN_DB .. MAX_DB`` in ``STEP_DB`` steps)."""
    g = torch.as_tensor(gains)
    if g.dtype.is_floating_point or g.is_complex() or g.dtype == torch.bool:
        raise FormatError(f"gains must be integer codes, got dtype {g.dtype}")
    expected = (channels, num_blocks(frames, gain_frames))
    if tuple(g.shape) != expected:
        raise FormatError(f"gains of shape {tuple(g.shape)}: {channels} channels of {frames} frames in "
                          f"gain blocks of {gain_frames} frames take [C, B] = {expected}")
    lo, hi = round(MIN_DB / STEP_DB), round(MAX_DB / STEP_DB)
    if g.numel() and (int(g.min()) < lo or int(g.max()) > hi):
        raise FormatError(f"gain code {int(g.min()) if int(g.min()) < lo else int(g.max())} outside {lo}..{hi}")
    return g.to(torch.int8)


def encode_audio(model, blocks: Iterable[torch.Tensor], sample_rate: int, channels: int, length: int,
                 n_q: int, chunk_frames: int = DEFAULT_CHUNK_FRAMES, exact: bool = False,
                 condition: bool = True, progress: Progress | None = None, beam: int | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The encode path of audio: resample to the model rate, condition, encode chunk by chunk.

    Args:
        blocks: float ``[C, n]`` tensors at ``sample_rate``, ``length`` samples in all.
        condition: condition the model-rate signal per gain block of ``GAIN_FRAMES * hop``
            samples (:mod:`~rotcodec.coding.conditioning`); False: the raw model path.
        progress: a bar updated in seconds of audio coded.
        beam: code paths kept per frame (None: the model's setting).

    Returns:
        ``(codes [C, n_q, F] int32, gains [C, ceil(F / GAIN_FRAMES)] int8 or None)``,
        ``F = ceil(T' / hop)`` with ``T'`` the length at the model's rate. Every block is
        conditioned from its own samples, so the codes do not depend on how the audio arrived.
    """
    check_resampling(sample_rate, model.sample_rate)
    model_length = resampled_length(length, sample_rate, model.sample_rate)
    stream = resample_stream(blocks, length, sample_rate, model.sample_rate)
    cond = ConditionStream(channels, GAIN_FRAMES * model.hop_length) if condition else None
    if cond is not None:
        stream = cond.stream(stream)
    parts, done = [], 0
    for codes in encode_stream(model, stream, model_length, n_q, chunk_frames, exact=exact, beam=beam):
        parts.append(codes.to(torch.int32))
        done += codes.shape[-1]
        if progress is not None:
            progress.update(done / model.frame_rate)
    codes = torch.cat(parts, dim=-1)
    if cond is None:
        return codes, None
    gains = cond.gains
    if gains.shape != (channels, num_blocks(model_length, cond.block)):  # every block pulled
        raise RuntimeError(f"conditioned {gains.shape[-1]} gain blocks of {model_length} samples")
    return codes, gains


def encode_to_rcq(model, blocks: Iterable[torch.Tensor], sample_rate: int, channels: int,
                  length: int, n_q: int, out: IO[bytes], progress: bool = False,
                  chunk_frames: int = DEFAULT_CHUNK_FRAMES, condition: bool = True, beam: int | None = None,
                  model_hash: str | None = None, entropy: bool = False) -> Header:
    """Encode ``length`` samples of ``channels``-channel audio at ``sample_rate`` and write an ``.rcq``.

    Args:
        blocks: float ``[C, n]`` tensors at ``sample_rate``, in order.
        out: binary stream; written only at the end, in one go (after all encoding succeeded).
        condition: condition the input and store the gains (``gain_frames = GAIN_FRAMES``); False:
            the raw model path, a file without gains (``gain_frames = 0``).
        beam: code paths kept per frame (None: the model's setting).
        model_hash: :func:`weights_hash` of ``model`` when the caller knows it (a model it loaded
            and keeps); None: hashed here.
        entropy: entropy-code the codes with ``model``'s context model
            (:func:`context_model_for`; ValueError when it has none), decoded without options.

    Returns:
        The header written.
    """
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"audio has {channels} channels; at most {MAX_CHANNELS} are supported")
    if length < 1:
        raise AudioError("audio is empty")
    check_resampling(sample_rate, model.sample_rate)
    model_hash = model_hash or weights_hash(model)
    ctx = context_model_for(model, n_q) if entropy else None
    frames = math.ceil(resampled_length(length, sample_rate, model.sample_rate) / model.hop_length)
    bar = Progress("compress", length / sample_rate, progress)
    try:
        codes, gains = encode_audio(model, blocks, sample_rate, channels, length, n_q, chunk_frames,
                                    condition=condition, progress=bar, beam=beam)
    finally:
        bar.close()
    coding = coding_fields(ctx)
    header = Header(
        model=model_id(model), model_hash=model_hash, sample_rate=model.sample_rate,
        original_sample_rate=sample_rate, channels=channels, n_q=n_q, bits=code_bits(model),
        frame_rate=model.frame_rate, frames=frames, length=length,
        chunk_frames=chunk_frames, chunk_overlap=encoder_context_frames(model),
        gain_frames=GAIN_FRAMES if condition else 0, **coding)
    write_rcq(out, header, codes.numpy(), None if gains is None else gains.numpy(),
              context_model=None if ctx is None else ctx[1])
    return header


def coding_fields(ctx) -> dict:
    """The :class:`Header` fields of a payload coded with ``ctx`` (``(id, context model)`` of
    :func:`context_model_for`), or of a bit-packed one (None): none to set."""
    return {} if ctx is None else dict(coding=PAYLOAD_ENTROPY, context_model=ctx[0], context_hash=ctx[1].digest)


def context_model_for(model, n_q: int):
    """``(id, context model)`` of ``model``'s context model (registered or bundled under its config
    name), for ``n_q`` stages; ValueError when there is none."""
    from rotcodec.entropy.bundled import for_codec

    found = for_codec(model.config.name)
    if found is None:
        raise ValueError(f"no context model for entropy coding ships for model {model_id(model)!r}; "
                         "compress without entropy coding, or fit one and register it "
                         "(python -m rotcodec.entropy.fit)")
    if n_q > found[1].max_stages or found[1].codebook_size != model.config.quantizer.codebook_size:
        raise ValueError(f"the context model {found[0]!r} codes up to {found[1].max_stages} stages of "
                         f"{found[1].codebook_size} codes, not {n_q} of {model.config.quantizer.codebook_size}")
    return found


def read_checked(f: IO[bytes], model, given: bool = True, model_hash: str | None = None,
                 ) -> tuple[Header, torch.Tensor, torch.Tensor | None]:
    """Read an ``.rcq`` from the seekable stream ``f``, validating the header against ``model``
    (``given`` and ``model_hash`` as in :func:`check_header`) before the payload is read. Returns
    ``(header, codes [C, n_q, F] int64, gains [C, B] int8 or None for a file without gains)``."""
    start = f.tell()
    check_header(read_header(f), model, model_hash, given=given)
    f.seek(start)
    header, codes, gains = read_rcq_gains(f)
    try:  # codes outside the codebook are possible when its size is not a power of two
        codes = check_codes(codes, model.config.quantizer.codebook_size, model.n_q)
    except FormatError as err:
        raise FormatError(f"invalid .rcq file: {err}") from None
    if not header.gain_frames:
        return header, codes, None
    return header, codes, check_gains(gains, header.channels, header.frames, header.gain_frames)


def ungain_stream(blocks: Iterable[torch.Tensor], gains: torch.Tensor | None, block: int) -> Iterator[torch.Tensor]:
    """Divide the gains ``[C, B]`` (one per ``block`` samples from sample 0) out of a stream of
    ``[C, n]`` model-rate blocks; ``gains=None`` passes the stream through (the reference level)."""
    done = 0
    for x in blocks:
        yield x if gains is None else apply_gains(x, gains, block, done, inverse=True)
        done += x.shape[-1]


def decode_rcq(model, header: Header, codes: torch.Tensor, progress: bool = False,
               chunk_frames: int = DEFAULT_CHUNK_FRAMES, gains: torch.Tensor | None = None,
               ) -> Iterator[torch.Tensor]:
    """Decode checked codes to float32 ``[C, n]`` blocks at the original rate, ``header.length`` in all.

    ``gains [C, B]`` (from :func:`read_checked`; None for a file without gains) are divided out at
    the model rate, before resampling, which gives back the level the audio came in at."""
    model_length = resampled_length(header.length, header.original_sample_rate, model.sample_rate)
    bar = Progress("decompress", header.length / header.original_sample_rate, progress)

    def model_rate_blocks() -> Iterator[torch.Tensor]:
        done = 0
        for block in decode_stream(model, codes, model_length, chunk_frames):
            done += block.shape[-1]
            bar.update(done / model.sample_rate)
            yield block

    try:
        ungained = ungain_stream(model_rate_blocks(), gains, header.gain_frames * model.hop_length)
        out = resample_stream(ungained, model_length, model.sample_rate, header.original_sample_rate)
        yield from take(out, header.length,  # resampling back may give a few more samples
                        short=lambda got: RuntimeError(f"decoder produced {got} samples, expected {header.length}"))
    finally:
        bar.close()

