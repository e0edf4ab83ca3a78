"""Tokenize a folder of audio into token files plus a JSONL manifest, and back.

``tokenize_folder(IN_DIR, OUT_DIR)`` codes every audio file under IN_DIR (recursively: .wav,
.flac, .ogg, .mp3, whatever soundfile reads) to a token file at the same relative place under
OUT_DIR (``a/b.wav`` -> ``a/b.rcq`` or ``a/b.npy``; when two inputs would share a name, both keep
their extension: ``b.wav.rcq``) and records one JSON line per file in ``OUT_DIR/manifest.jsonl``::

    {"path": "a/b.wav", "tokens": "a/b.rcq", "format": "rcq", "duration": 2.5,
     "sample_rate": 44100, "channels": 1, "length": 110250, "frames": 125, "n_q": 6,
     "codebook_size": 1024, "model": "speech16k-cpu@1", "model_hash": "…", "exact": false, "beam": 4,
     "gain_frames": 50, "entropy": false}
    {"path": "c/broken.wav", "error": "not a readable audio file: …"}

``.npy`` token files hold int16 ``[C, n_q, F]`` (no header: the manifest line is their header).

Gains: the encoder conditions its input (:mod:`rotcodec.coding.conditioning`: DC out, each gain
block of ``gain_frames`` frames brought to -26 dBFS), so the codes carry no level; the level is in
one int8 gain code per channel and block. An ``.rcq`` token file holds its gains; for ``.npy`` they
are in the manifest line, ``"gains": [[code, ...], ...]`` (``[C, ceil(F / gain_frames)]``, dB =
code * 0.5). :func:`rotcodec.tokens.load_gains` reads either; ``detokenize`` divides them out, so
the audio comes back at its own level. ``condition=False`` (``--no-condition``) codes the raw
signal: ``"gain_frames": 0``, no gains. Lines written before gains existed have no
``gain_frames``; their tokens were coded raw, and decode as before.

Resuming: rerunning the same command skips files whose manifest line is ``ok`` and whose token
file exists, and retries errors. Each token file is written to a hidden temp file, its manifest
line appended, and only then renamed into place, so a killed run leaves either a finished token
file with its line, or no token file (stale temp files are removed by the next run). A token
file that exists without a line is someone else's: it is left alone (an error line) unless
``force``. Settings that differ from the folder's (model weights, n_q, format, exact, beam,
entropy coding) are refused unless ``force``, which redoes everything. At the end the manifest is
rewritten, one line per file, sorted.

Shards: ``shard=(I, N)`` (``--shard I/N``, 1-based) codes every N-th file of the sorted list from
the I-th and writes ``manifest.shard-I-of-N.jsonl`` instead, so N machines can each take one shard
into the same folder. The folder's manifests (``manifest.jsonl`` and every shard manifest) read as
one dataset: :func:`read_manifest`, ``detokenize``. The union of the N shards is the unsharded run,
file for file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from rotcodec import api
from rotcodec.bitrate import stages_and_cap
from rotcodec.checks import is_int, positive_int
from rotcodec.coding.chunks import DEFAULT_CHUNK_FRAMES
from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.coding.pipeline import check_beam, code_bits, coding_fields, context_model_for, model_id, other_model
from rotcodec.coding.progress import ProgressLine  # noqa: F401 - re-exported
from rotcodec.errors import FormatError, NoModel, OutputExists
from rotcodec.files import AUDIO_SUFFIXES, atomic_write_text, audio_files  # noqa: F401 - re-exported
from rotcodec.io.audio import audio_info
from rotcodec.io.container import Header, write_rcq
from rotcodec.model.codec import Codec
from rotcodec.model.loading import weights_hash
from rotcodec.text import counted

__all__ = ["AUDIO_SUFFIXES", "FORMATS", "MANIFEST", "Summary", "audio_files", "detokenize_folder",
           "manifest_name", "manifests", "read_manifest", "shard_files", "token_names", "tokenize_folder"]

FORMATS = ("rcq", "npy")
MANIFEST = "manifest.jsonl"
_SHARD_MANIFEST = re.compile(r"manifest\.shard-([0-9]+)-of-([0-9]+)\.jsonl")
_SETTINGS = ("model_hash", "n_q", "format", "exact", "beam", "gain_frames", "entropy")  # shared by a folder's ok lines
_OLDER = {"beam": 1, "gain_frames": 0, "entropy": False}  # settings older manifests lack, and what those lines used


@dataclass(frozen=True)
class Summary:
    """What a run did: files ``coded`` now, ``skipped`` (done before), ``failed``; seconds of audio
    coded now and the wall time, in seconds; ``verb``: what the line calls coding (``"decoded"``
    for :func:`detokenize_folder`)."""

    coded: int
    skipped: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    verb: str = "coded"

    def line(self) -> str:
        rate = self.audio_seconds / max(self.wall_seconds, 1e-9)
        return (f"{self.coded} files {self.verb} ({self.audio_seconds / 3600:.3f} h of audio) in "
                f"{self.wall_seconds:.1f} s: {self.coded / max(self.wall_seconds, 1e-9):.2f} files/s, "
                f"{rate:.1f} h of audio per hour; {self.skipped} already done, {self.failed} failed")


# ----- names and the manifest --------------------------------------------------------------------
def token_names(files: list[Path], fmt: str) -> dict[Path, Path]:
    """Relative audio path -> relative token path: the suffix replaced by ``.fmt``, or appended
    (``b.wav.rcq``) for every file whose replaced name another file would share."""
    plain = {f: f.with_suffix(f".{fmt}") for f in files}
    seen: dict[Path, int] = {}
    for target in plain.values():
        seen[target] = seen.get(target, 0) + 1
    return {f: (t if seen[t] == 1 else f.with_name(f"{f.name}.{fmt}")) for f, t in plain.items()}


def shard_files(files: list[Path], shard: tuple[int, int] | None) -> list[Path]:
    """Shard ``I`` of ``N`` (1-based: ``(1, 3)``, ``(2, 3)``, ``(3, 3)``) of the sorted ``files``:
    every N-th file from the I-th, so the N shards split any list into disjoint parts of nearly
    equal size that together hold every file, the same parts on every machine. None: all files."""
    if shard is None:
        return list(files)
    index, count = shard
    if not (is_int(index) and is_int(count) and 1 <= index <= count):
        raise ValueError(f"shard must be (I, N) with 1 <= I <= N, got {shard!r}")
    return sorted(files)[index - 1:: count]


def manifest_name(shard: tuple[int, int] | None = None) -> str:
    """The manifest a run writes: ``manifest.jsonl``, or ``manifest.shard-I-of-N.jsonl`` for shard
    I of N (so shards written into one folder by different machines never share a file)."""
    return MANIFEST if shard is None else f"manifest.shard-{shard[0]}-of-{shard[1]}.jsonl"


def manifests(folder: str | os.PathLike) -> list[Path]:
    """The manifests of a token folder, sorted: ``manifest.jsonl`` and the shard manifests."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if (p.name == MANIFEST or _SHARD_MANIFEST.fullmatch(p.name)) and p.is_file())


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The manifest of a token folder, as one dataset: relative audio path -> its (last) line,
    over ``manifest.jsonl`` and every shard manifest (:func:`manifests`, in that order); ``{}`` if none.

    A last line without its newline (a run killed while writing it) is ignored.

    Raises:
        FormatError: a line that is not a JSON object with a ``path``.
    """
    entries: dict[str, dict] = {}
    for path in manifests(folder):
        entries.update(_read_manifest_file(path))
    return entries


def _read_manifest_file(path: Path) -> dict[str, dict]:
    """One manifest file's lines (see :func:`read_manifest`), ``{}`` if it does not exist."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # unfinished last line
    entries: dict[str, dict] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise FormatError(f"{path}, line {number}: not a manifest entry (a JSON object with a path)")
        entries[entry["path"]] = entry
    return entries


def _write_manifest(path: Path, entries: dict[str, dict]) -> None:
    """Rewrite the manifest ``path``, one line per file sorted by path, atomically."""
    atomic_write_text(path, "".join(json.dumps(entries[key], ensure_ascii=False) + "\n"
                                                 for key in sorted(entries)))


def _remove_stale_temps(folder: Path, targets: set[Path] | None = None) -> None:
    """Temp files of a killed run: ``.<name>.<8 hex>.tmp`` under ``folder``; with ``targets``
    (relative token paths), only those of these files (other shards may be writing theirs)."""
    for p in folder.rglob(".*.tmp"):
        parts = p.name.split(".")
        if len(parts) >= 4 and len(parts[-2]) == 8 and p.is_file():
            if targets is None or p.relative_to(folder).with_name(".".join(parts[1:-2])) in targets:
                p.unlink(missing_ok=True)


# ----- one file ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    source: str  # absolute audio path
    rel: str  # relative audio path (posix)
    target: str  # absolute token path
    tokens: str  # relative token path (posix)
    fmt: str
    kbps: float | None
    exact: bool
    condition: bool = True
    beam: int | None = None
    entropy: bool = False


_WORKER: dict = {}


def _set_model(model: Codec) -> None:
    _WORKER.update(model=model, hash=weights_hash(model), id=model_id(model))


def _init_worker(model_file: dict, threads: int) -> None:
    from rotcodec.config import CodecConfig

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", api.BitrateCapped)  # the parent warns once for the folder
    model = Codec(CodecConfig.from_dict(model_file["config"]))
    model.load_state_dict(model_file["state_dict"])
    _set_model(model.eval())


def _code_one(job: _Job) -> tuple[dict, str | None]:
    """Code one file to a temp file next to its target. Returns ``(manifest line, temp path)``;
    on failure an error line and no temp file."""
    model: Codec = _WORKER["model"]
    tmp = None
    try:
        sample_rate, channels, length = audio_info(job.source)
        codes, gains = api.encode(job.source, model=model, kbps=job.kbps, exact=job.exact,
                                  condition=job.condition, return_gains=True, beam=job.beam)  # [C, n_q, F], [C, B]
        gain_frames = GAIN_FRAMES if job.condition else 0
        entry = {"path": job.rel, "tokens": job.tokens, "format": job.fmt,
                 "duration": round(length / sample_rate, 6), "sample_rate": sample_rate,
                 "channels": channels, "length": length, "frames": int(codes.shape[-1]),
                 "n_q": int(codes.shape[1]), "codebook_size": model.config.quantizer.codebook_size,
                 "model": _WORKER["id"], "model_hash": _WORKER["hash"], "exact": job.exact,
                 "beam": job.beam or model.config.quantizer.beam, "gain_frames": gain_frames,
                 "entropy": job.entropy}
        if job.fmt == "npy" and gains is not None:
            entry["gains"] = gains.tolist()
        target = Path(job.target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "xb") as f:
            if job.fmt == "npy":
                np.save(f, codes.astype(np.int16), allow_pickle=False)
            else:
                ctx = context_model_for(model, entry["n_q"]) if job.entropy else None
                header = Header(
                    model=_WORKER["id"], model_hash=_WORKER["hash"], sample_rate=model.sample_rate,
                    original_sample_rate=sample_rate, channels=channels, n_q=entry["n_q"],
                    bits=code_bits(model), frame_rate=model.frame_rate, frames=entry["frames"],
                    length=length, chunk_frames=DEFAULT_CHUNK_FRAMES,
                    chunk_overlap=model.encoder_context_frames(), gain_frames=gain_frames, **coding_fields(ctx))
                write_rcq(f, header, codes, gains, context_model=None if ctx is None else ctx[1])
        return entry, str(tmp)
    except (ValueError, OSError, RuntimeError) as err:  # AudioError/FormatError are ValueErrors
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return {"path": job.rel, "error": " ".join(str(err).split()) or type(err).__name__}, None


# ----- the folder --------------------------------------------------------------------------------
def _check_settings(entries: dict[str, dict], want: dict, force: bool, out_dir: Path, stages) -> None:
    """Refuse (FileExistsError, unless ``force``) a folder whose ok lines were made with settings
    other than ``want``; ``stages(channels)`` is the ``n_q`` a file of that many channels gets now."""
    for entry in entries.values():
        if "error" in entry:
            continue
        want = {**want, "n_q": stages(entry.get("channels", 1))}
        had = {k: entry.get(k, _OLDER.get(k)) for k in _SETTINGS}
        diff = [f"{k} {had[k]!r} (now {want[k]!r})" for k in _SETTINGS if had[k] != want[k]]
        if diff and not force:
            raise OutputExists("{out_dir} holds tokens made with other settings ({diff}, e.g. for {path}); "
                               "use another folder, or {force} to redo every file",
                               out_dir=out_dir, diff=", ".join(diff), path=entry["path"])


def tokenize_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, model: api.ModelArg = None,
                    kbps: float | None = None, fmt: str = "rcq", jobs: int = 1, exact: bool = False,
                    force: bool = False, progress: Callable[[int, int, float], None] | None = None,
                    condition: bool = True, shard: tuple[int, int] | None = None,
                    beam: int | None = None, entropy: bool = False) -> Summary:
    """Tokenize every audio file under ``in_dir`` into ``out_dir`` (created) with a manifest.

    Args:
        model: a :class:`Codec`, model file or bundled name, or None (the default model).
        kbps: target bitrate of each file, all its channels together (as in
            :func:`rotcodec.compress`; default: all stages). Above the model's maximum a file is
            coded with all stages, and one :class:`~rotcodec.api.BitrateCapped` warning says so.
        fmt: ``"rcq"`` (bit-packed, with a header) or ``"npy"`` (int16 ``[C, n_q, F]``).
        jobs: worker processes (each loads the model and uses ``threads // jobs`` torch threads).
        exact: float64 encoding (codes independent of chunking; about 2.5x slower).
        force: redo files already done and overwrite token files that are not this folder's.
        progress: called as ``progress(files_done, files_total, audio_seconds_done)`` after each file.
        condition: condition the input and keep the gains (see the module notes); False: raw codes.
        shard: ``(I, N)``, 1-based: code only shard I of N of the sorted file list
            (:func:`shard_files`) and keep its lines in ``manifest.shard-I-of-N.jsonl``, so N
            machines can fill one folder (shared or merged later); token names are those of the
            whole list, and :func:`read_manifest` / :func:`detokenize_folder` read the shard
            manifests as one dataset. Resuming and settings checks are per shard: run every
            shard with the same settings.
        beam: code paths the encoder keeps per frame (None: the model's setting); recorded in
            the manifest, a setting like ``exact``.
        entropy: ``rcq`` files entropy-coded with the model's context model (as
            ``compress --entropy``: the same codes in fewer bytes); a setting like ``beam``.

    Returns:
        A :class:`Summary`. Files that fail (unreadable audio, ...) get an ``error`` line in the
        manifest and count as ``failed``; the run goes on.

    Raises:
        FileNotFoundError: no ``in_dir``, or no parent for ``out_dir``.
        FileExistsError: ``out_dir`` holds tokens of other settings (without ``force``).
        ValueError: a bad ``fmt``, ``jobs`` or ``kbps``; ``npy`` with a codebook beyond int16;
            ``entropy`` with ``npy`` or for a model without a context model.
        FormatError: an unreadable manifest.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    positive_int("jobs", jobs)
    start = time.monotonic()
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir)
    every = audio_files(in_dir)
    files = shard_files(every, shard)
    beam = check_beam(beam)
    codec = model if isinstance(model, Codec) else api.load_model(model)
    stages_and_cap(codec, kbps, 1)  # a bad kbps, or one below one stage of a mono file, fails before any work

    def stages(channels: int) -> int:
        """Stages a file of ``channels`` gets now; 0 when ``kbps`` is below one stage for it."""
        try:
            return stages_and_cap(codec, kbps, max(1, int(channels)))[0]
        except ValueError:
            return 0
    if fmt == "npy" and codec.config.quantizer.codebook_size > 2**15:
        raise ValueError(f"npy tokens are int16; codes of {codec.config.quantizer.codebook_size} do not fit (use rcq)")
    if entropy and fmt != "rcq":
        raise ValueError("entropy coding is for rcq token files (npy tokens are plain int16 arrays)")
    if entropy:
        context_model_for(codec, stages(1) or codec.n_q)  # ValueError now when the model has none
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {out_dir.parent}")
    out_dir.mkdir(exist_ok=True)
    manifest = out_dir / manifest_name(shard)
    entries = _read_manifest_file(manifest)
    want = {"model_hash": weights_hash(codec), "format": fmt, "exact": bool(exact),
            "beam": beam or codec.config.quantizer.beam, "gain_frames": GAIN_FRAMES if condition else 0,
            "entropy": bool(entropy)}
    _check_settings(entries, want, force, out_dir, stages)
    names = token_names(every, fmt)  # of the whole list: a name never depends on the shard
    _remove_stale_temps(out_dir, None if shard is None else {names[f] for f in files})

    todo: list[_Job] = []
    skipped = failed = 0
    for rel in files:
        key, tokens = rel.as_posix(), names[rel].as_posix()
        entry = entries.get(key)
        target = out_dir / names[rel]
        if not force and entry and "error" not in entry and entry.get("tokens") == tokens and target.is_file():
            skipped += 1
            continue
        if target.exists() and not force and not (entry and entry.get("tokens") == tokens):
            entries[key] = {"path": key, "error": f"{target} exists and is not in the manifest; "
                                                  f"not overwritten without force"}
            failed += 1
            continue
        todo.append(_Job(str(in_dir / rel), key, str(target), tokens, fmt, kbps, bool(exact), bool(condition),
                         beam, bool(entropy)))

    coded, seconds, capped = 0, 0.0, set()
    with open(manifest, "a", encoding="utf-8") as log, warnings.catch_warnings():
        warnings.simplefilter("ignore", api.BitrateCapped)  # once for the folder, below
        for entry, tmp in _run(todo, codec, jobs):
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()
            if tmp is not None:  # the line is written: now the file may appear
                os.replace(tmp, out_dir / entry["tokens"])
                coded += 1
                seconds += entry["duration"]
                if stages_and_cap(codec, kbps, entry["channels"])[1]:
                    capped.add(entry["channels"])
            else:
                failed += 1
            entries[entry["path"]] = entry
            if progress is not None:
                progress(skipped + coded + failed, len(files), seconds)
    _write_manifest(manifest, entries)
    if capped:
        top = codec.bitrate() / 1000
        warnings.warn(f"{kbps:g} kbps is above this model's maximum for files of {_join(sorted(capped))} "
                      f"channel(s) ({top:g} kbps a channel, all {counted(codec.n_q, 'stage')}): capped at that",
                      api.BitrateCapped, stacklevel=2)
    return Summary(coded, skipped, failed, seconds, time.monotonic() - start)


def _join(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:-1]) + (" or " if len(numbers) > 1 else "") + str(numbers[-1])


def _run(todo: list[_Job], codec: Codec, jobs: int) -> Iterator[tuple[dict, str | None]]:
    """Results of :func:`_code_one` for each job, in this process or ``jobs`` workers (any order)."""
    if not todo:
        return
    if jobs == 1:
        _set_model(codec)
        for job in todo:
            yield _code_one(job)
        return
    threads = max(1, torch.get_num_threads() // jobs)
    model_file = codec.model_file()
    model_file["state_dict"] = {k: v.cpu() for k, v in model_file["state_dict"].items()}
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(model_file, threads))
    pending: set[Future] = set()
    queue = iter(todo)
    try:
        while True:
            while len(pending) < 2 * jobs:
                job = next(queue, None)
                if job is None:
                    break
                pending.add(pool.submit(_code_one, job))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ----- the reverse -------------------------------------------------------------------------------
def _entry_model(entry: dict, model: api.ModelArg, cache: dict) -> Codec:
    """The model for a manifest line: ``model`` if given, else the bundled model it names."""
    given = model is not None
    key = entry.get("model") if model is None else id(model)
    if key not in cache:
        if model is None:
            name = str(entry.get("model", "")).rsplit("@", 1)[0]
            if name not in api.bundled_models():
                raise NoModel("tokens made by model {made!r}, which is not bundled; pass the model that made "
                              "them ({model})", made=entry.get("model"))
            model = name
        codec = model if isinstance(model, Codec) else api.load_model(model)
        cache[key] = (codec, weights_hash(codec))
    codec, digest = cache[key]
    if entry.get("model_hash") != digest:
        raise other_model(str(entry["tokens"]), str(entry.get("model")), entry.get("model_hash"), model_id(codec),
                          digest, given)
    return codec


def _decode_one(tokens_dir: Path, entry: dict, target: Path, codec: Codec, force: bool) -> None:
    from rotcodec.io.audio import write_audio
    from rotcodec.tokens import load_codes, load_gains

    source = tokens_dir / entry["tokens"]
    if entry.get("format") == "rcq" or source.suffix == ".rcq":
        api.decompress_file(source, target, codec, force=force)
        return
    codes = load_codes(source)
    expected = (entry.get("channels"), entry.get("n_q"), entry.get("frames"))
    if codes.shape != expected:
        raise FormatError(f"{source}: codes of shape {codes.shape}, the manifest says [C, n_q, F] = {expected}")
    gains, gain_frames = load_gains(source, entry)
    wav = api.decode(codes, model=codec, sample_rate=entry["sample_rate"], length=entry["length"],
                     gains=gains, gain_frames=gain_frames or GAIN_FRAMES)
    write_audio(target, wav, entry["sample_rate"], force=force)


def detokenize_folder(tokens_dir: str | os.PathLike, out_dir: str | os.PathLike, model: api.ModelArg = None,
                      ext: str = "wav", force: bool = False,
                      progress: Callable[[int, int, float], None] | None = None,
                      on_error: Callable[[str, Exception], None] | None = None) -> Summary:
    """Decode every token file the folder's manifests list (``manifest.jsonl`` and the shard
    manifests, as one dataset: :func:`read_manifest`) back to audio under ``out_dir``, mirroring the tree.

    ``a/b.rcq`` (made from ``a/b.flac``) becomes ``out_dir/a/b.<ext>`` at the original rate,
    channels, length and level (the gains divided out; tokens without gains at the reference level). Outputs that exist are skipped (counted as skipped) unless ``force``.
    A file that fails (missing, malformed: :class:`FormatError`) is reported to
    ``on_error(path, error)`` (the exception: ``str(error)`` words it for the API,
    :func:`rotcodec.errors.worded` for another reader) and counted as failed; the others go on.

    Raises:
        FileNotFoundError: no manifest in ``tokens_dir``, or no parent for ``out_dir``.
        FormatError: an unreadable manifest.
    """
    start = time.monotonic()
    tokens_dir, out_dir = Path(tokens_dir), Path(out_dir)
    ext = ext.lstrip(".").lower()
    if ext not in ("wav", "flac", "ogg"):
        raise ValueError(f"audio format must be wav, flac or ogg, got {ext!r}")
    if not manifests(tokens_dir):
        raise FileNotFoundError(f"no {MANIFEST} (nor shard manifests) in {tokens_dir} (made by `rotcodec tokenize`)")
    entries = [e for _, e in sorted(read_manifest(tokens_dir).items()) if "error" not in e]
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {out_dir.parent}")
    out_dir.mkdir(exist_ok=True)
    cache: dict = {}
    coded = skipped = failed = 0
    seconds = 0.0
    for i, entry in enumerate(entries, 1):
        try:
            rel = Path(entry["path"])
            if not isinstance(entry.get("tokens"), str) or not all(
                    not p.is_absolute() and ".." not in p.parts for p in (rel, Path(entry["tokens"]))):
                raise FormatError(f"manifest line for {entry['path']!r}: paths must be relative, inside the folder")
            target = out_dir / rel.with_suffix(f".{ext}")
            if target.exists() and not force:
                skipped += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _decode_one(tokens_dir, entry, target, _entry_model(entry, model, cache), force)
            coded += 1
            seconds += float(entry.get("duration", 0.0))
        except (ValueError, OSError, KeyError, TypeError) as err:
            failed += 1
            if on_error is not None:
                on_error(entry.get("path", "?"), err)
        if progress is not None:
            progress(i, len(entries), seconds)
    return Summary(coded, skipped, failed, seconds, time.monotonic() - start, verb="decoded")

