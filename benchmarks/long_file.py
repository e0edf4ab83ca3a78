"""Peak memory and time of compress_file / decompress_file on a long file (not part of the tests).

    python benchmarks/long_file.py                       # 60 min, 16 kHz mono, speech16k random model
    python benchmarks/long_file.py --minutes 5 --preset tiny --threads 1

Generates a speech-like test file (harmonic voice with a moving pitch, syllable envelope and a
little noise) block by block, builds a random model of the preset (k-means initialised by one
training-mode forward) and saves it, then runs each phase in a fresh Python process and prints
that process's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_audio(path: Path, minutes: float, sample_rate: int, seed: int = 0) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * sample_rate)
    block = 60 * sample_rate
    phase = 0.0
    with sf.SoundFile(path, "w", sample_rate, 1, "PCM_16") as snd:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / sample_rate
            f0 = 130 + 40 * np.sin(2 * np.pi * 0.3 * t) + 20 * np.sin(2 * np.pi * 2.1 * t)
            ph = phase + 2 * np.pi * np.cumsum(f0) / sample_rate
            phase = float(ph[-1])
            voice = sum(np.sin(k * ph) / k for k in range(1, 25))
            env = np.clip(np.sin(2 * np.pi * 2.7 * t), 0, None) ** 0.5 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.05 * t))
            x = 0.25 * voice * env + 0.01 * rng.standard_normal(n)
            snd.write(x.astype(np.float32))


def make_model(path: Path, preset: str, seed: int = 0) -> None:
    import torch

    from rotcodec import Codec, CodecConfig

    torch.manual_seed(seed)
    model = Codec(CodecConfig.preset(preset))
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 1, 2 * model.sample_rate) * 0.1)  # k-means init of every stage
    model.eval().save(path)


def run_phase(phase: str, model: str, src: str, dst: str, threads: int | None) -> None:
    """One phase in this process; prints a JSON line with its time and peak RSS."""
    import torch

    import rotcodec

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    codec = rotcodec.load_model(model)
    t1 = time.perf_counter()
    if phase == "compress":
        rotcodec.compress_file(src, dst, codec, force=True, progress=True)
    else:
        rotcodec.decompress_file(src, dst, codec, force=True, progress=True)
    t2 = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"phase": phase, "load_s": t1 - t0, "seconds": t2 - t1,
                      "peak_rss_mb": peak_kib / 1024}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--preset", default="speech16k")
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice; 1 is faster on a busy machine)")
    ap.add_argument("--workdir", default=None, help="where to put the files (default: a temp dir)")
    ap.add_argument("--phase", choices=["compress", "decompress"], help=argparse.SUPPRESS)
    ap.add_argument("--args", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        run_phase(args.phase, *args.args, args.threads)
        return 0

    with tempfile.TemporaryDirectory(prefix="rotcodec-bench-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        wav, rcq, out, model = tmp / "long.wav", tmp / "long.rcq", tmp / "long_out.wav", tmp / "model.pt"
        t = time.perf_counter()
        make_audio(wav, args.minutes, args.sample_rate)
        make_model(model, args.preset)
        print(f"generated {args.minutes:g} min at {args.sample_rate} Hz ({wav.stat().st_size / 2**20:.0f} MiB) "
              f"and a random {args.preset} model in {time.perf_counter() - t:.1f} s", flush=True)
        results = {}
        for phase, src, dst in (("compress", wav, rcq), ("decompress", rcq, out)):
            cmd = [sys.executable, __file__, "--phase", phase, "--args", str(model), str(src), str(dst)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = results[phase]
            print(f"{phase:>10}: {r['seconds']:8.1f} s  (x{args.minutes * 60 / r['seconds']:.1f} real time), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB (model load {r['load_s']:.1f} s)", flush=True)
        seconds = args.minutes * 60
        size = rcq.stat().st_size
        print(f".rcq: {size} bytes = {size * 8 / seconds / 1000:.3f} kbps real for {seconds:.0f} s")
        import soundfile as sf

        info = sf.info(str(out))
        print(f"decoded: {info.frames} samples at {info.samplerate} Hz (input {int(seconds * args.sample_rate)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
