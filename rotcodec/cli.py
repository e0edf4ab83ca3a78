"""The ``rotcodec`` command line, thin over :mod:`rotcodec.api`.

::

    rotcodec compress IN OUT.rcq [--kbps K] [--beam N] [--model M] [--device D] [--force] [--no-condition] [--entropy]
    rotcodec decompress IN.rcq OUT.wav [--model M] [--device D] [--force]
    rotcodec info FILE.rcq
    rotcodec roundtrip IN OUT.wav [--kbps K] [--beam N] [--model M] [--device D] [--force]
    rotcodec eval --data DIR [--kbps 1.5,3,6] [--model M] [--limit N] [--json OUT] [--plot DIR] [--conditions]
    rotcodec bench [--seconds S] [--batch 1,16] [--kbps 1.5,3,6] [--long-minutes M] [--train RECIPES] [--json OUT]
    rotcodec report IN OUT.html [--kbps 1.5,3,6] [--opus] [--clips N] [--seconds S]
    rotcodec tokenize IN_DIR OUT_DIR [--kbps K] [--model M] [--jobs N] [--format rcq|npy] [--exact] [--no-condition]
                      [--shard I/N] [--entropy]
    rotcodec detokenize TOKENS_DIR OUT_DIR [--model M] [--ext wav|flac|ogg]
    rotcodec models
    rotcodec train RECIPE --data DIR --out RUN [--init MODEL] [--resume] [--set key=value]
    rotcodec ablate RECIPE --data DIR --out RUN

``--kbps`` is always the whole file's bitrate, all channels together (:mod:`rotcodec.bitrate`);
``--beam`` is the encoder's search for this run (the model file keeps its own default).
``compress IN -`` writes the ``.rcq`` to standard output, ``decompress - OUT`` reads it from
standard input.

``rotcodec --version`` prints the version; ``--help`` answers without loading torch (for every
command but ``train`` and ``ablate``, whose package loads it).

``--threads N`` (on the commands that compute) sets ``torch.set_num_threads(N)``; without it the
environment variable ``ROTCODEC_THREADS`` does, and without that torch chooses (it follows
``OMP_NUM_THREADS`` when set, else uses the machine's cores).

``main(argv)`` returns the exit code: 0 on success, 1 for an error (one line on stderr starting
with ``rotcodec: error:``, no traceback; outputs are written atomically, so a failed command
leaves no partial file), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rotcodec.bitrate import BitrateCapped
from rotcodec.errors import CLI, worded
from rotcodec.files import atomic_writer, check_output
from rotcodec.text import counted

if TYPE_CHECKING:
    import torch

    from rotcodec.api import Codec
    from rotcodec.io.container import Header

# Nothing above loads torch: `rotcodec --help`, `rotcodec COMMAND --help` and `--version` answer at
# once. The commands import the API (and with it torch) when they run.

__all__ = ["main", "build_parser"]

PROG = "rotcodec"


class CLIError(Exception):
    """A user-facing error raised by the command line itself."""


# ----- subcommands -------------------------------------------------------------------------------
def _device(name: str) -> "torch.device":
    from rotcodec.models import check_device  # loads torch

    return check_device(name)


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _say(args, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text)


def _describe(path: Path, header: Header) -> str:
    seconds = header.length / header.original_sample_rate
    size = path.stat().st_size
    return (f"{path}: {seconds:.2f} s, {header.channels} ch, {counted(header.n_q, 'stage')}, "
            f"{size * 8 / seconds / 1000:.3f} kbps ({size} bytes)")


def _load(args, device) -> "Codec":
    """The model named by ``--model``, on ``device``; ``--beam`` checked (it goes to each encoding call)."""
    from rotcodec import api

    if getattr(args, "beam", None) is not None and args.beam < 1:
        raise CLIError(f"--beam must be >= 1, got {args.beam}")
    return api.load_model(args.model, device)


def cmd_compress(args) -> int:
    """``compress IN OUT``; ``compress IN -`` writes the .rcq bytes to stdout in one write at the
    end, and the summary to stderr."""
    from rotcodec import api
    from rotcodec.io.audio import audio_info

    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise CLIError("refusing to write binary .rcq data to a terminal; redirect or pipe standard output")
    device = _device(args.device)
    if not to_stdout:
        check_output(Path(args.output), args.force)
    audio_info(args.input)  # a missing or unreadable input is reported before any model error
    model = _load(args, device)
    header = api.compress_file(args.input, sys.stdout.buffer if to_stdout else args.output, model, kbps=args.kbps,
                               force=args.force, progress=_progress(args), condition=not args.no_condition,
                               beam=args.beam, entropy=args.entropy)
    if not to_stdout:
        _say(args, _describe(Path(args.output), header))
        return 0
    sys.stdout.buffer.flush()
    if not args.quiet:
        print(f"-: {header.length / header.original_sample_rate:.2f} s, {header.channels} ch, "
              f"{counted(header.n_q, 'stage')}", file=sys.stderr)
    return 0


def cmd_decompress(args) -> int:
    from rotcodec import api

    source = sys.stdin.buffer if args.input == "-" else args.input  # stdin: read whole (an .rcq is small)
    header = api.decompress_file(source, args.output, args.model, force=args.force, progress=_progress(args),
                                 device=_device(args.device))
    _say(args, f"{args.output}: {header.length / header.original_sample_rate:.2f} s, "
               f"{header.channels} ch, {header.original_sample_rate} Hz")
    return 0


def cmd_models(args) -> int:
    from rotcodec.models import list_models

    infos = list_models()
    if not infos:
        print("no bundled models (rotcodec/pretrained/ holds no NAME.pt)")
    for info in infos:
        print(info.line())
    return 0


def cmd_tokenize(args) -> int:
    from rotcodec.coding.progress import ProgressLine
    from rotcodec.tokenize import manifest_name, tokenize_folder

    shard = _shard(args.shard)
    if not Path(args.input).is_dir():
        raise CLIError(f"no such folder: {args.input}")
    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    model = _load(args, _device(args.device))
    bar = ProgressLine("tokenize") if _progress(args) else None
    try:
        summary = tokenize_folder(args.input, args.output, model, kbps=args.kbps, fmt=args.format,
                                  jobs=args.jobs, exact=args.exact, force=args.force, progress=bar,
                                  condition=not args.no_condition, shard=shard, beam=args.beam,
                                  entropy=args.entropy)
    finally:
        if bar is not None:
            bar.close()
    print(summary.line() + (f" (see {Path(args.output) / manifest_name(shard)})" if summary.failed else ""),
          file=sys.stderr)
    return 1 if summary.failed else 0


def _shard(text: str | None) -> tuple[int, int] | None:
    """``--shard I/N`` as ``(I, N)``, 1 <= I <= N."""
    if text is None:
        return None
    i, _, n = text.partition("/")
    if not (i.strip().isdigit() and n.strip().isdigit() and 1 <= int(i) <= int(n)):
        raise CLIError(f"--shard must be I/N with 1 <= I <= N (e.g. 1/3, 2/3, 3/3), got {text!r}")
    return int(i), int(n)


def cmd_detokenize(args) -> int:
    from rotcodec import api
    from rotcodec.coding.progress import ProgressLine
    from rotcodec.tokenize import detokenize_folder

    model = api.load_model(args.model, _device(args.device)) if args.model else None
    bar = ProgressLine("detokenize") if _progress(args) else None

    def report(path: str, err: Exception) -> None:
        print(f"{PROG}: error: {path}: {_one_line(err)}", file=sys.stderr)

    try:
        summary = detokenize_folder(args.input, args.output, model, ext=args.ext, force=args.force,
                                    progress=bar, on_error=report)
    finally:
        if bar is not None:
            bar.close()
    print(summary.line(), file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_info(args) -> int:
    from rotcodec.io.container import peek_version, read_rcq_gains

    path = Path(args.input)
    if path.is_dir():
        raise IsADirectoryError(f"is a directory, not an .rcq file: {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        version = peek_version(f)
        header, _, gains = read_rcq_gains(f)  # validates the whole file, CRCs included
    size = path.stat().st_size
    seconds = header.length / header.original_sample_rate
    nominal = header.frame_rate * header.n_q * header.bits * header.channels
    rows = [
        ("file", f"{path} ({size} bytes, .rcq format {version})"),
        ("model", f"{header.model} (weights {header.model_hash or 'unknown'})"),
        ("sample rate", f"{header.sample_rate} Hz in the model, {header.original_sample_rate} Hz original"),
        ("channels", str(header.channels)),
        ("stages", f"{header.n_q} x {header.bits} bits"),
        ("frames", f"{header.frames} at {header.frame_rate:g} Hz"),
        ("duration", f"{seconds:.3f} s ({header.length} samples)"),
        ("chunking", f"{header.chunk_frames} frames, {header.chunk_overlap} frames of context"
         if header.chunk_frames else "none"),
        ("nominal bitrate", f"{nominal / 1000:.3f} kbps"
         + (f" ({nominal / header.channels / 1000:.3f} kbps per channel)" if header.channels > 1 else "")),
        ("payload", "bit-packed" if not header.coding
         else f"entropy-coded with context model {header.context_model} ({header.context_hash})"),
        ("real bitrate", f"{size * 8 / seconds / 1000:.3f} kbps"),
        ("gains", f"{gains.size} int8 codes, one per channel and {header.gain_frames} frames, "
                  f"{gains.min() * 0.5:+.1f} to {gains.max() * 0.5:+.1f} dB" if gains.size
         else "none (decodes at the model's reference level)"),
    ]
    width = max(len(k) for k, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
    return 0


def cmd_roundtrip(args) -> int:
    from rotcodec import api, metrics
    from rotcodec.io.audio import audio_info, read_audio

    device = _device(args.device)
    check_output(Path(args.output), args.force)
    audio_info(args.input)
    model = _load(args, device)
    with tempfile.TemporaryDirectory(prefix="rotcodec-") as tmp:
        rcq = Path(tmp) / "roundtrip.rcq"
        header = api.compress_file(args.input, rcq, model, kbps=args.kbps, progress=_progress(args),
                                   condition=not args.no_condition, beam=args.beam)
        size = rcq.stat().st_size
        api.decompress_file(rcq, args.output, model, force=args.force, progress=_progress(args))
    ref, sr = read_audio(args.input)
    est, _ = read_audio(args.output)
    seconds = header.length / header.original_sample_rate
    nominal = model.bitrate(header.n_q) * header.channels
    print(f"bitrate:  {size * 8 / seconds / 1000:.3f} kbps real, {nominal / 1000:.3f} kbps nominal "
          f"({counted(header.n_q, 'stage')}, {size} bytes for {seconds:.2f} s)")
    try:
        score = metrics.pesq_wb(ref, est, sr)
        pesq_text = f"{score:.3f}" if score is not None else "skipped (too short or no speech found)"
    except Exception as err:  # PESQ is a C library with its own failure modes; the rest still counts
        pesq_text = f"skipped ({type(err).__name__}: {' '.join(str(err).split())})"
    print(f"PESQ-WB:  {pesq_text}")
    print(f"mel dist: {metrics.mel_distance(ref, est, sr):.4f}")
    print(f"SI-SDR:   {metrics.si_sdr(ref, est):.2f} dB")
    return 0


def _kbps_list(text: str) -> list[float | None]:
    try:
        return [None if t.strip() in ("all", "") else float(t) for t in text.split(",")]
    except ValueError:
        raise CLIError(f"--kbps must be a comma-separated list of numbers, got {text!r}") from None


def cmd_eval(args) -> int:
    from rotcodec.bitrate import stages_for_kbps
    from rotcodec.evaluate import audio_files, evaluate, markdown_table, usage_table

    kbps_list = _kbps_list(args.kbps)
    if args.json and Path(args.json).exists() and not args.force:
        raise CLIError(f"{args.json} exists (use --force to overwrite)")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise CLIError(f"no such folder for --json: {Path(args.json).parent}")
    model = _load(args, _device(args.device))
    for kbps in kbps_list:
        stages_for_kbps(model, kbps, 1, warn=False)  # a bitrate below one stage fails here, before any work
    files = audio_files(args.data, args.limit)
    if args.conditions:
        return _eval_conditions(args, model, files, kbps_list)
    if args.plot:  # fail before the work: no matplotlib, or PNGs that would overwrite files
        from rotcodec.plots import pyplot

        pyplot()
        targets = [Path(args.plot) / "usage.png"] + [_spectrogram_png(args.plot, i, f)
                                                     for i, f in enumerate(files[: args.plot_clips])]
        for target in targets:
            if target.exists() and not args.force:
                raise CLIError(f"{target} exists (use --force to overwrite)")
    examples: dict[int, dict] = {}

    def keep(i: int, label: str, ref, est, sr: int) -> None:
        if args.plot and i < args.plot_clips:
            examples.setdefault(i, {"sr": sr, "rows": {"original": ref}})["rows"][label] = est

    scores = evaluate(model, files, kbps_list, on_decoded=keep, beam=args.beam)
    print(markdown_table(scores))
    print("\nPer stage: % of codes used on the set / perplexity / quantization error ||e-q||^2 / ||e||^2:\n")
    print(usage_table(scores))
    if args.json:
        _write_json(args.json, [s.as_dict() for s in scores], args.force, indent=2)
    if args.plot:
        from rotcodec.plots import spectrograms, usage_bars

        folder = Path(args.plot)
        written = [usage_bars({s.name: s.usage for s in scores}, folder / "usage.png")]
        for i, ex in sorted(examples.items()):
            written.append(spectrograms(ex["rows"], ex["sr"], _spectrogram_png(folder, i, files[i]), files[i].name))
        print(f"\nplots: {', '.join(str(p) for p in written)}")
    return 0


def _eval_conditions(args, model, files, kbps_list) -> int:
    from rotcodec.conditions import coders_for, evaluate_conditions, markdown
    from rotcodec.io.audio import read_audio
    from rotcodec.opus import opus_missing

    opus = [k for k in _kbps_list(args.opus) if k is not None] if args.opus else []
    if opus and (why := opus_missing()):
        print(f"no Opus column: {why}", file=sys.stderr)
        opus = []
    coders = coders_for(model, kbps_list, opus, beam=args.beam)
    clips = [read_audio(f) for f in files]
    rows = evaluate_conditions(clips, coders, progress=None if args.quiet else
                               lambda cond, name: print(f"{cond}: {name}", file=sys.stderr, flush=True))
    print(markdown(rows))
    if args.json:
        _write_json(args.json, rows, args.force, indent=2)
    return 0


def cmd_bench(args) -> int:
    from rotcodec.bench import markdown, run_bench

    if args.json:
        check_output(Path(args.json), args.force)
    device = _device(args.device)
    batches = _int_list(args.batch, "--batch") if args.batch else None
    recipes = []
    if args.train:
        from rotcodec.api import bundled_recipes, recipe_path

        names = bundled_recipes() if args.train == "all" else args.train.split(",")
        for name in names:
            try:
                recipes.append(str(recipe_path(name)))
            except FileNotFoundError as err:
                raise CLIError(f"--train: {err}") from None
    model = _load(args, device)
    report = run_bench(model, args.model, device, seconds=args.seconds, batches=batches,
                       kbps_list=_kbps_list(args.kbps), repeats=args.repeats, encodec=not args.no_encodec,
                       long_minutes=args.long_minutes, train_recipes=recipes, train_steps=args.train_steps,
                       log=lambda text: print(text, file=sys.stderr), beam=args.beam)
    print(markdown(report))
    if args.json:
        _write_json(args.json, report, args.force, indent=1)
    return 0


def cmd_report(args) -> int:
    import shlex
    import time

    from rotcodec.evaluate import audio_files
    from rotcodec.report import DEFAULT_MAX_MB, build_report

    start = time.perf_counter()
    out, src = Path(args.output), Path(args.input)
    if out.suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"the report is an HTML page: OUT must end in .html, got {out}")
    check_output(out, args.force)
    max_mb = DEFAULT_MAX_MB if args.max_mb is None else args.max_mb
    if max_mb <= 0 or (args.clips is not None and args.clips < 1) or (args.seconds is not None and args.seconds <= 0):
        raise CLIError("--max-mb, --clips and --seconds must be positive")
    kbps_list = _kbps_list(args.kbps)
    if src.is_dir():
        files = audio_files(src, args.clips)
    elif src.is_file():
        files = [src]
    else:
        raise FileNotFoundError(f"no such file or folder: {src}")
    model = _load(args, _device(args.device))
    command = [PROG, *args.argv]  # as typed
    log = None if args.quiet else (lambda text: print(f"report: {text}", file=sys.stderr))
    report = build_report(files, model, kbps_list, opus=args.opus, seconds=args.seconds, max_mb=max_mb,
                          command=shlex.join(command), log=log,
                          model_source=args.model or "the bundled default", beam=args.beam)
    with atomic_writer(out, args.force) as f:
        f.write(report.html.encode("utf-8"))
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    _say(args, f"{out}: {report.size / 1e6:.2f} MB, {len(report.clips)} clips x {len(report.scores)} decodings, "
               f"built in {time.perf_counter() - start:.1f} s")
    return 0


def _write_json(path: str, obj, force: bool, indent: int) -> None:
    """Write ``obj`` as JSON atomically, refusing an existing file without ``--force`` (it may have
    appeared since the check before the work)."""
    import json

    with atomic_writer(path, force) as f:
        f.write((json.dumps(obj, indent=indent) + "\n").encode("utf-8"))


def _spectrogram_png(folder, index: int, file: Path) -> Path:
    return Path(folder) / f"spectrogram_{index}_{file.stem}.png"


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise CLIError(f"{flag} must be a comma-separated list of integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise CLIError(f"{flag} values must be >= 1, got {text!r}")
    return values


# ----- parser ------------------------------------------------------------------------------------
KBPS_LIST_HELP = ("comma-separated bitrates, each a file's total over its channels as for compress (a mono "
                  "clip at 6 gets 6 kbps, a stereo one 3 a channel); 'all' for every stage (default 1.5,3,6)")
# What an input audio file may be: whatever soundfile (libsndfile) reads.
AUDIO_IN = "audio file: wav, flac, ogg, mp3, aiff, ... (any format soundfile reads)"


class _Parser(argparse.ArgumentParser):
    """A parser that reports an unknown option with the usage of the command it was given to.

    argparse's subcommands hand options they do not know back to the top-level parser, whose
    error shows ``usage: rotcodec [-h] [--version] COMMAND ...``, no help for a misspelled
    ``--kbps``; here the command's own parser (``commands[name]``) reports them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            chosen = self.commands.get(getattr(parsed, "command", None) or "", self)
            chosen.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed


def _options(kbps: bool = False, beam: bool = False, quiet: bool = True) -> argparse.ArgumentParser:
    """The options the model commands share, as a parent parser (``parents=[...]``): ``--model``,
    ``--device``, ``--force``, ``-q``, ``--threads``, and ``--kbps`` (one file's total) and
    ``--beam`` where the command encodes."""
    p = argparse.ArgumentParser(add_help=False)
    if kbps:
        p.add_argument("--kbps", type=float, default=None, help=KBPS_HELP + "; default: all stages")
    if beam:
        p.add_argument("--beam", type=int, default=None, metavar="N",
                       help="encoder search: code paths kept per frame (1: greedy, fastest; "
                            "default: the model's setting, 4 for the bundled model)")
    p.add_argument("--model", default=None,
                   help="model file (from `rotcodec train` or Codec.save) or bundled model name (`rotcodec models`)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    _add_threads(p)
    return p


KBPS_HELP = ("target bitrate of the whole file, all channels together (as opusenc --bitrate: stereo at 3 "
             "gets 1.5 kbps a channel); each channel takes the most stages that fit; above the model's "
             "maximum: all stages, with a warning")


THREADS_ENV = "ROTCODEC_THREADS"


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help=f"torch CPU threads (default: ${THREADS_ENV} if set, else torch's choice, "
                        "which follows $OMP_NUM_THREADS)")


def _set_threads(args) -> None:
    """``torch.set_num_threads`` from ``--threads``, else from ``$ROTCODEC_THREADS``; neither: torch's
    own choice is left alone (and torch is not imported here)."""
    if not hasattr(args, "threads"):
        return
    n, source = args.threads, "--threads"
    if n is None and os.environ.get(THREADS_ENV, "").strip():
        text, source = os.environ[THREADS_ENV].strip(), f"${THREADS_ENV}"
        n = int(text) if text.isdigit() else 0
    if n is None:
        return
    if n < 1:
        raise CLIError(f"{source} must be a positive integer")
    import torch

    torch.set_num_threads(n)


def _add_entropy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entropy", action="store_true",
                   help="entropy-code the codes with the model's context model (the same codes in "
                        "fewer bytes; the file names it and decodes without options)")


def _add_no_condition(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-condition", action="store_true",
                   help="code the raw signal: no DC removal, no per-second leveling to -26 dBFS, no gains "
                        "in the output (by default the level is taken out before the encoder and put back on decoding)")


# `rotcodec train` and `rotcodec ablate` (rotcodec/train/cli.py). Importing that module loads the
# rotcodec.train package, and with it torch; so its parsers are built only when one of these
# commands runs, and other invocations list them with these lines.
_TRAIN_COMMANDS = {
    "train": "train a codec from a recipe",
    "ablate": "train and compare gradient estimators (rotation vs straight-through) on one recipe",
}


def _with_recipe(func):
    """``func(args)`` with ``args.recipe`` resolved first: a TOML file, or a bundled recipe's name
    (:func:`rotcodec.api.recipe_path`), so that `rotcodec train stft16k_cpu` works from any install."""
    def run(args) -> int:
        from rotcodec.api import recipe_path

        args.recipe = str(recipe_path(args.recipe))
        return func(args)

    return run


def _add_train(subparsers, command: str | None) -> None:
    """Add ``train`` and ``ablate``: their full parsers (``rotcodec.train.cli.add_parser``, which
    sets ``func``) when ``command`` is one of them or None; otherwise placeholders that only name
    them in ``rotcodec --help``."""
    if command is None or command in _TRAIN_COMMANDS:
        from rotcodec.train.cli import add_parser

        _add_threads(add_parser(subparsers))  # the train parser
        for name in _TRAIN_COMMANDS:
            p = subparsers.choices[name]
            p.set_defaults(func=_with_recipe(p.get_default("func")))
        return
    for name, text in _TRAIN_COMMANDS.items():
        subparsers.add_parser(name, help=text, add_help=False)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. ``command`` (the one about to run) lets the training commands'
    parsers, which load torch, be left out when another runs; None builds them all."""
    from rotcodec import __version__

    parser = _Parser(prog=PROG, description="rotcodec neural audio codec")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    parser.commands = sub.choices  # the same dict: the commands added below are in it

    p = sub.add_parser("compress", help="audio file -> .rcq token file", parents=[_options(kbps=True, beam=True)])
    p.add_argument("input", help=AUDIO_IN)
    p.add_argument("output", help="the .rcq file to write ('-': standard output)")
    _add_no_condition(p)
    _add_entropy(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help=".rcq token file -> audio file", parents=[_options()])
    p.add_argument("input", help="the .rcq file ('-': standard input)")
    p.add_argument("output", help="audio file to write (.wav, .flac or .ogg)")
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="show the header, duration and bitrate of an .rcq file")
    p.add_argument("input", help="the .rcq file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("roundtrip", help="compress and decompress, print bitrate and quality metrics",
                       parents=[_options(kbps=True, beam=True)])
    p.add_argument("input", help=AUDIO_IN)
    p.add_argument("output", help="decoded audio file to write (.wav, .flac or .ogg)")
    _add_no_condition(p)
    p.set_defaults(func=cmd_roundtrip)

    p = sub.add_parser("eval", help="PESQ-WB, STOI, mel distance, SI-SDR and real bitrate over a folder",
                       parents=[_options(beam=True)])
    p.add_argument("--data", required=True, metavar="DIR", help="folder of audio files (searched recursively)")
    p.add_argument("--kbps", default="1.5,3,6", help=KBPS_LIST_HELP)
    p.add_argument("--limit", type=int, default=None, help="evaluate at most N files (sorted by path)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the scores as JSON")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write PNGs to DIR: usage per stage, spectrograms original vs decoded (needs matplotlib)")
    p.add_argument("--plot-clips", type=int, default=3, help="files drawn as spectrograms with --plot (default 3)")
    p.add_argument("--conditions", action="store_true",
                   help="score each file as recorded and quiet, loud, with DC, noisy and phone-band "
                        "(PESQ-WB by condition; --kbps for rotcodec, --opus beside it)")
    p.add_argument("--opus", default="8", metavar="KBPS",
                   help="with --conditions: Opus bitrates beside rotcodec (default 8; '' for none; needs opus-tools)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="encode/decode speed, long-file memory, and EnCodec in the same run",
                       parents=[_options(beam=True, quiet=False)])
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    p.add_argument("--batch", default=None, help="batch sizes (default 1,16; on CUDA 1,16,64)")
    p.add_argument("--kbps", default="1.5,3,6", help=KBPS_LIST_HELP)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per figure, median (default 3)")
    p.add_argument("--no-encodec", action="store_true", help="skip EnCodec (otherwise needs `pip install encodec`)")
    p.add_argument("--long-minutes", type=float, default=0.0,
                   help="also compress/decompress a file this long in fresh processes (e.g. 60); default off")
    p.add_argument("--train", default=None, metavar="RECIPES",
                   help="also measure training steps/s: comma-separated recipe names or paths, or 'all'")
    p.add_argument("--train-steps", type=int, default=10, help="timed training steps per recipe (default 10)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="one self-contained HTML page: players, spectrograms and metrics per bitrate",
                       parents=[_options(beam=True)])
    p.add_argument("input", help="an audio file, or a folder of them (searched recursively, sorted)")
    p.add_argument("output", help="the .html page to write")
    p.add_argument("--kbps", default="1.5,3,6", help=KBPS_LIST_HELP)
    p.add_argument("--opus", action="store_true",
                   help="also Opus at the same nominal bitrates (needs opusenc/opusdec, e.g. apt-get install opus-tools)")
    p.add_argument("--clips", type=int, default=None, help="at most N files of a folder (default: all)")
    p.add_argument("--seconds", type=float, default=None, help="use only the first S seconds of each file")
    p.add_argument("--max-mb", type=float, default=None,
                   help="refuse to write a page bigger than this many MB (default 50)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tokenize", help="every audio file under a folder -> token files + manifest.jsonl",
                       parents=[_options(kbps=True, beam=True)])
    p.add_argument("input", metavar="IN_DIR", help="folder of audio files (searched recursively)")
    p.add_argument("output", metavar="OUT_DIR", help="folder for the token files (mirrors IN_DIR) and the manifest")
    p.add_argument("--format", choices=("rcq", "npy"), default="rcq",
                   help="token files: .rcq (bit-packed, default) or .npy (int16 [C, n_q, F])")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--exact", action="store_true",
                   help="float64 encoding: codes never depend on chunking (about 2.5x slower)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="code only shard I of N (1-based: 1/3, 2/3, 3/3): every N-th file of the sorted list "
                        "from the I-th, listed in manifest.shard-I-of-N.jsonl; N machines can fill one "
                        "OUT_DIR, which detokenize and rotcodec.tokenize.read_manifest read as one dataset")
    _add_no_condition(p)
    _add_entropy(p)
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("detokenize", help="token folder (with its manifest.jsonl or shard manifests) -> audio files",
                       parents=[_options()])
    p.add_argument("input", metavar="TOKENS_DIR", help="folder written by `rotcodec tokenize`")
    p.add_argument("output", metavar="OUT_DIR", help="folder for the audio files (mirrors the original tree)")
    p.add_argument("--ext", choices=("wav", "flac", "ogg"), default="wav", help="audio format (default wav)")
    p.set_defaults(func=cmd_detokenize)

    p = sub.add_parser("models", help="list the bundled models: rate, stages, bitrates and what each is for")
    p.set_defaults(func=cmd_models)

    _add_train(sub, command)
    return parser


def _one_line(err: BaseException) -> str:
    """``err`` on one line; an error that names an option names its flag (``--force``, not the
    API's ``force=True``: :class:`rotcodec.errors.WordedError`)."""
    if isinstance(err, OSError) and err.strerror and err.filename and len(err.args) > 1:
        text = f"{err.strerror}: {os.fsdecode(err.filename)}"
    else:
        text = worded(err, CLI) or type(err).__name__
    return " ".join(text.split())


def _warning_printer():
    """A ``warnings.showwarning`` that prints the API's bitrate warnings as ``rotcodec: warning:``
    lines, each text once per command (a folder of files warns once, not per file); other
    warnings are shown as Python shows them."""
    seen: set[str] = set()
    show = warnings.showwarning

    def printer(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, BitrateCapped):
            return show(message, category, filename, lineno, file, line)
        text = f"{PROG}: warning: {message}"
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)

    return printer


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), ""))
    try:
        args = parser.parse_args(argv)
        args.argv = argv  # the command as typed (the report shows it)
    except SystemExit as exit_:  # argparse: usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is required", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer()
            _set_threads(args)
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError, RuntimeError) as err:
        # FormatError and AudioError are ValueErrors; OSError covers missing files and folders.
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1
