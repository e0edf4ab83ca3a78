"""``rotcodec bench``: speed and memory, measured the same way for rotcodec and for EnCodec.

Figures (all after one warm-up call, median of ``repeats``; "x real time" = seconds of audio coded
per second of wall time, so higher is faster):
  * ``api``: :func:`rotcodec.compress` + :func:`rotcodec.decompress` of one mono clip, the whole user
    path (chunking, packing, CRCs), per bitrate;
  * ``model``: ``Codec.encode`` / ``Codec.decode`` of a batch of clips, per batch size and bitrate
    (fp32; on CUDA also bf16 autocast);
  * ``encodec``: EnCodec's 24 kHz architecture at 6 kbps built with random weights through its model
    class (``pip install encodec``, no download: speed does not depend on the weights), same clip
    length and batch sizes, same process;
  * ``long``: time and peak RSS of ``compress_file`` / ``decompress_file`` of an N-minute file, each
    in a fresh process (on the CPU);
  * ``train``: training steps/s of each recipe on random batches (the recipe's batch and segment).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rotcodec.bitrate import nominal_kbps, stages_for_kbps
from rotcodec.coding.chunks import model_device

__all__ = ["speech_like", "time_call", "bench_api", "bench_model", "bench_encodec", "bench_long",
           "bench_train", "machine", "markdown"]


def speech_like(seconds: float, sample_rate: int, seed: int = 0, start: int = 0) -> np.ndarray:
    """A voiced-speech-like float32 test signal: harmonics of a moving pitch, a syllable envelope,
    a little noise. ``start`` (in samples) lets a long file be generated block by block."""
    rng = np.random.default_rng(seed + start)
    t = (start + np.arange(int(seconds * sample_rate))) / sample_rate
    f0 = 130 + 40 * np.sin(2 * np.pi * 0.3 * t) + 20 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * (130 * t - 40 / (2 * np.pi * 0.3) * np.cos(2 * np.pi * 0.3 * t)
                         - 20 / (2 * np.pi * 2.1) * np.cos(2 * np.pi * 2.1 * t))
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    env = np.clip(np.sin(2 * np.pi * 2.7 * t), 0, None) ** 0.5 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.05 * t))
    return (0.25 * voice * env + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_api(model, seconds: float, kbps_list: list[float | None], repeats: int,
              beam: int | None = None) -> list[dict]:
    """compress + decompress of one mono clip through the public API, per bitrate (CPU tensors in/out);
    for a model with a context model, also with ``entropy=True`` (the ``*_entropy_*`` fields)."""
    import rotcodec
    from rotcodec.entropy.bundled import for_codec

    sr = model.sample_rate
    wav = speech_like(seconds, sr)[None]
    device = model_device(model)
    entropy = [False] + [True] * (for_codec(model.config.name) is not None)
    rows = []
    for kbps in kbps_list:
        row = {"kbps": nominal_kbps(model, stages_for_kbps(model, kbps, 1)), "seconds": seconds}
        for ent in entropy:
            data = rotcodec.compress(wav, sr, model, kbps=kbps, beam=beam, entropy=ent)
            enc = time_call(lambda: rotcodec.compress(wav, sr, model, kbps=kbps, beam=beam, entropy=ent),
                            device, repeats)
            dec = time_call(lambda: rotcodec.decompress(data, model), device, repeats)
            tag = "_entropy" if ent else ""
            row.update({f"encode{tag}_s": enc, f"decode{tag}_s": dec, f"encode{tag}_x": seconds / enc,
                        f"decode{tag}_x": seconds / dec, f"roundtrip{tag}_x": seconds / (enc + dec)})
        rows.append(row)
    return rows


def _precisions(device: torch.device) -> list[str]:
    return ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def bench_model(model, seconds: float, batches: list[int], kbps_list: list[float | None], repeats: int,
                beam: int | None = None) -> list[dict]:
    """``Codec.encode`` / ``Codec.decode`` throughput per batch size, bitrate and precision."""
    device = model_device(model)
    sr = model.sample_rate
    clip = torch.from_numpy(speech_like(seconds, sr))
    rows = []
    for precision in _precisions(device):
        for batch in batches:
            x = clip.expand(batch, 1, -1).contiguous().to(device)
            for kbps in kbps_list:
                n_q = stages_for_kbps(model, kbps, 1)  # each item of the batch is one mono clip
                with _autocast(precision, device):
                    codes = model.encode(x, n_q, beam=beam)
                    enc = time_call(lambda: model.encode(x, n_q, beam=beam), device, repeats)
                    dec = time_call(lambda: model.decode(codes), device, repeats)
                audio = batch * seconds
                rows.append({"codec": "rotcodec", "precision": precision, "batch": batch,
                             "kbps": model.bitrate(n_q) / 1000, "encode_x": audio / enc, "decode_x": audio / dec,
                             "roundtrip_x": audio / (enc + dec), "encode_s": enc, "decode_s": dec})
    return rows


@torch.inference_mode()
def bench_encodec(seconds: float, batches: list[int], device: torch.device, repeats: int) -> list[dict] | str:
    """The same figures for EnCodec 24 kHz at 6 kbps (random weights), or why it was skipped."""
    try:
        import warnings

        from encodec import EncodecModel
    except ImportError:
        return "skipped: EnCodec is not installed (pip install 'rotcodec[bench]')"
    with warnings.catch_warnings():  # its weight_norm is the deprecated torch one
        warnings.simplefilter("ignore")
        model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(6.0)
    model = model.to(device).eval()
    clip = torch.from_numpy(speech_like(seconds, 24000))
    rows = []
    for precision in _precisions(device):
        for batch in batches:
            x = clip.expand(batch, 1, -1).contiguous().to(device)
            with _autocast(precision, device):
                frames = model.encode(x)
                enc = time_call(lambda: model.encode(x), device, repeats)
                dec = time_call(lambda: model.decode(frames), device, repeats)
            audio = batch * seconds
            rows.append({"codec": "EnCodec 24 kHz", "precision": precision, "batch": batch, "kbps": 6.0,
                         "encode_x": audio / enc, "decode_x": audio / dec, "roundtrip_x": audio / (enc + dec),
                         "encode_s": enc, "decode_s": dec})
    return rows


def _write_long_wav(path: Path, minutes: float, sample_rate: int) -> None:
    import soundfile as sf

    block = 60 * sample_rate
    total = int(minutes * 60 * sample_rate)
    with sf.SoundFile(str(path), "w", sample_rate, 1, "PCM_16") as snd:
        for start in range(0, total, block):
            snd.write(speech_like(min(block, total - start) / sample_rate, sample_rate, start=start))


_PHASE = """
import json, resource, sys, time
import rotcodec
phase, model, src, dst, beam = sys.argv[1:6]
codec = rotcodec.load_model(model or None)
t0 = time.perf_counter()
if phase == "compress":
    rotcodec.compress_file(src, dst, codec, force=True, beam=int(beam))
else:
    rotcodec.decompress_file(src, dst, codec, force=True)
seconds = time.perf_counter() - t0
# VmHWM, not getrusage: Linux carries ru_maxrss over exec, so a child of a big process would
# report its parent's peak.
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak / 1024}))
"""


def bench_long(model_arg: str | None, sample_rate: int, minutes: float, workdir: str | None = None,
               beam: int = 1) -> dict:
    """Compress then decompress an N-minute speech-like file, each phase in a fresh process
    (peak RSS of that process, time without interpreter start-up and model loading), encoding
    with a beam of ``beam`` code paths."""
    with tempfile.TemporaryDirectory(prefix="rotcodec-bench-", dir=workdir) as tmp:
        tmp = Path(tmp)
        wav, rcq, out = tmp / "long.wav", tmp / "long.rcq", tmp / "long_out.wav"
        _write_long_wav(wav, minutes, sample_rate)
        result = {"minutes": minutes, "sample_rate": sample_rate}
        for phase, src, dst in (("compress", wav, rcq), ("decompress", rcq, out)):
            cmd = [sys.executable, "-c", _PHASE, phase, model_arg or "", str(src), str(dst), str(beam)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"long-file {phase} failed: {proc.stderr.strip().splitlines()[-1:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            result[phase] = {**r, "x_real_time": minutes * 60 / r["seconds"]}
        result["rcq_bytes"] = rcq.stat().st_size
        result["kbps_real"] = rcq.stat().st_size * 8 / (minutes * 60) / 1000
    return result


def bench_train(recipe_path: str | Path, device: torch.device, steps: int) -> dict:
    """Training steps/s of a recipe on random batches of its own batch size and segment length."""
    from rotcodec.train.config import load_recipe
    from rotcodec.train.steps import autocast_for, build_parts, discriminator_step, generator_step

    recipe = load_recipe(recipe_path)
    torch.manual_seed(0)
    parts = build_parts(recipe, device)
    parts.model.train()
    amp = autocast_for(recipe, device)
    seg = int(recipe.data.segment_seconds * recipe.model.sample_rate)
    real = (0.1 * torch.randn(recipe.data.batch_size, 1, seg)).to(device)

    def one(step: int) -> None:
        logs, fake = generator_step(parts, recipe, real, step, amp)
        if recipe.loss.adversarial and step >= recipe.loss.adversarial_start:
            discriminator_step(parts, recipe, real, fake, amp)

    one(0)  # k-means init and allocator warm-up
    _sync(device)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        one(step)
    _sync(device)
    rate = steps / (time.perf_counter() - t0)
    return {"recipe": Path(recipe_path).stem, "steps_per_s": rate, "batch": recipe.data.batch_size,
            "segment_s": recipe.data.segment_seconds, "adversarial": recipe.loss.adversarial,
            "audio_x": rate * recipe.data.batch_size * recipe.data.segment_seconds}


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _ratio(ours: list[dict], theirs: list[dict] | str) -> list[dict]:
    """rotcodec's round-trip speed over EnCodec's, per precision and batch (rotcodec at its
    bitrate closest to EnCodec's 6 kbps)."""
    if isinstance(theirs, str):
        return []
    out = []
    for t in theirs:
        same = [o for o in ours if o["precision"] == t["precision"] and o["batch"] == t["batch"]]
        if same:
            o = min(same, key=lambda r: abs(r["kbps"] - t["kbps"]))
            out.append({"precision": t["precision"], "batch": t["batch"], "rotcodec_kbps": o["kbps"],
                        "ratio": o["roundtrip_x"] / t["roundtrip_x"]})
    return out


def markdown(report: dict) -> str:
    """The report as markdown tables."""
    m = report["machine"]
    lines = [f"Model {report['model_name']} (encoder beam {report.get('beam', 1)}). Machine: {m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} threads)"
             + (f", GPU {m['gpu']}" if "gpu" in m else "") + f"; clips of {report['seconds']:g} s.", ""]
    if report.get("api"):
        lines += ["API round trip (rotcodec.compress + decompress, 1 mono clip), x real time:", "",
                  "| kbps | compress | decompress | round trip |", "|---|---|---|---|"]
        lines += [f"| {r['kbps']:g} | {r['encode_x']:.1f} | {r['decode_x']:.1f} | {r['roundtrip_x']:.1f} |"
                  for r in report["api"]]
        if "decode_entropy_x" in report["api"][0]:
            lines += ["", "The same with entropy coding (`entropy=True`), x real time:", "",
                      "| kbps | compress | decompress | round trip |", "|---|---|---|---|"]
            lines += [f"| {r['kbps']:g} | {r['encode_entropy_x']:.1f} | {r['decode_entropy_x']:.1f} | "
                      f"{r['roundtrip_entropy_x']:.1f} |" for r in report["api"]]
        lines.append("")
    rows = report["model"] + ([] if isinstance(report["encodec"], str) else report["encodec"])
    lines += ["Model encode / decode throughput, x real time:", "",
              "| codec | precision | batch | kbps | encode | decode | round trip |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['codec']} | {r['precision']} | {r['batch']} | {r['kbps']:g} | {r['encode_x']:.1f} | "
              f"{r['decode_x']:.1f} | {r['roundtrip_x']:.1f} |" for r in rows]
    if isinstance(report["encodec"], str):
        lines += ["", f"EnCodec: {report['encodec']}"]
    for r in report["ratio"]:
        lines.append(f"\nrotcodec ({r['rotcodec_kbps']:g} kbps) / EnCodec (6 kbps) round-trip speed, "
                     f"{r['precision']}, batch {r['batch']}: {r['ratio']:.2f}x")
    if report.get("long"):
        lg = report["long"]
        lines += ["", f"{lg['minutes']:g}-minute file at {lg['sample_rate']} Hz ({lg['kbps_real']:.3f} kbps real):", "",
                  "| phase | seconds | x real time | peak RSS MB |", "|---|---|---|---|"]
        lines += [f"| {p} | {lg[p]['seconds']:.1f} | {lg[p]['x_real_time']:.1f} | {lg[p]['peak_rss_mb']:.0f} |"
                  for p in ("compress", "decompress")]
    if report.get("train"):
        lines += ["", "Training speed (random batches):", "",
                  "| recipe | batch x seconds | adversarial | steps/s | x real time |", "|---|---|---|---|---|"]
        lines += [f"| {r['recipe']} | {r['batch']} x {r['segment_s']:g} | {r['adversarial']} | "
                  f"{r['steps_per_s']:.2f} | {r['audio_x']:.1f} |" for r in report["train"]]
    return "\n".join(lines)


def run_bench(model, model_arg: str | None, device: torch.device, seconds: float = 10.0,
              batches: list[int] | None = None, kbps_list: list[float | None] | None = None,
              repeats: int = 3, encodec: bool = True, long_minutes: float = 0.0,
              train_recipes: list[str] | None = None, train_steps: int = 10, log=print,
              beam: int | None = None) -> dict:
    """Run the selected benchmarks and return the report (see the module docstring); ``beam``: the
    encoder's search timed (None: the model's setting)."""
    batches = batches or ([1, 16, 64] if device.type == "cuda" else [1, 16])
    kbps_list = kbps_list or [1.5, 3.0, 6.0]
    report: dict = {"machine": machine(device), "seconds": seconds, "model_name": model.config.name,
                    "beam": model.config.quantizer.beam if beam is None else beam}
    log(f"bench: {model.config.name} on {device}, {torch.get_num_threads()} threads")
    report["api"] = bench_api(model, seconds, kbps_list, repeats, report["beam"])
    report["model"] = bench_model(model, seconds, batches, kbps_list, repeats, report["beam"])
    report["encodec"] = bench_encodec(seconds, batches, device, repeats) if encodec else "skipped (--no-encodec)"
    report["ratio"] = _ratio(report["model"], report["encodec"])
    if long_minutes > 0:
        log(f"bench: {long_minutes:g}-minute file ...")
        report["long"] = bench_long(model_arg, model.sample_rate, long_minutes, beam=report["beam"])
    report["train"] = [bench_train(r, device, train_steps) for r in (train_recipes or [])]
    return report
