"""Benchmark the classifier: texts/s at batch 1 and 32, real-length items and fixed 128-token texts, peak RSS.

Each configuration runs in a fresh child process (so its peak RSS is its own), on the same texts, with
the same number of threads (default 2, like CI; torch's and ONNX Runtime's intra-op threads):

* ``baseline``  plain transformers + torch: AutoModel fp32, tokenizer padding to the batch's longest text
  in input order, mean pooling (what a straightforward implementation does);
* ``native-<precision>``  this project's encoder on its plain-torch MiniLM (length bucketing, dynamic
  padding; fp32, int8 linear layers, bf16 where the CPU has it);
* ``onnx-<precision>``  the same encoder on the ONNX graph and ONNX Runtime (fp32, int8 weight-only);
* ``classifier``  the whole scorer classifier as the scorer runs it (default settings: onnx backend, auto
  precision, chunking, three heads and sentence evidence); its peak RSS is the scorer's model share.

The ONNX graphs are built once, before the measurements, into a temporary cache folder.

Real-length texts are the project's labelled items (headline + summary, as the scorer reads them);
128-token texts are items joined until the tokenizer cuts them at exactly 128 tokens.

    .venv/bin/python bench/bench_classifier.py               # 256 texts, 2 threads
    .venv/bin/python bench/bench_classifier.py --items 512 --threads 4 --configs baseline onnx-int8
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("baseline", "native-fp32", "native-int8", "native-bf16", "onnx-fp32", "onnx-int8", "classifier")


def texts(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """(real-length texts, the same as (title, summary) pairs); labelled items in file order, cycled."""
    from monitor.classify.data import read_training_data

    items = read_training_data()
    pairs = [(i.title, i.summary) for i in items]
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    return [f"{t}. {s}" for t, s in pairs], pairs


@functools.cache
def _tokenizer() -> Any:
    from monitor.classify.encoder import default_model_dir, load_tokenizer

    return load_tokenizer(default_model_dir(), max_tokens=512)


def count_tokens(text: str) -> int:
    return len(_tokenizer().encode(text).ids)


def long_texts(real: list[str], n: int) -> list[str]:
    """Texts of at least 128 tokens (cut at 128 by truncation)."""
    out = []
    for i in range(n):
        text = real[i % len(real)]
        j = i + 1
        while count_tokens(text) < 130:
            text += " " + real[j % len(real)]
            j += 1
        out.append(text)
    return out


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: Linux carries that over an
    exec from the parent, so a child would report the parent's peak (here: building the ONNX graphs)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


REPEAT = 3


def timed(fn: Any, batches: list[list[Any]]) -> float:
    """Texts per second over ``batches``: the best of ``REPEAT`` passes, after one warm-up batch (the
    machine is shared; the best pass is the one least disturbed by other work)."""
    fn(batches[0])
    best = 0.0
    for _ in range(REPEAT):
        started = time.perf_counter()
        n = 0
        for batch in batches:
            fn(batch)
            n += len(batch)
        best = max(best, n / (time.perf_counter() - started))
    return best


def chunks(seq: list[Any], size: int) -> list[list[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def run_one(config: str, n: int, threads: int, batch1_items: int, cache: Path) -> dict[str, Any]:
    real, pairs = texts(n)
    result: dict[str, Any] = {"config": config, "threads": threads}
    if config == "baseline":
        import torch

        torch.set_num_threads(threads)
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from monitor.classify.encoder import default_model_dir

        hf_logging.disable_progress_bar()
        path = str(default_model_dir())
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()

        def run(batch: list[str]) -> None:
            with torch.inference_mode():
                enc = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1)
                (hidden * mask).sum(1) / mask.sum(1)

        encode = run
    elif config.startswith(("native-", "onnx-")):
        from monitor.classify.encoder import Encoder, cpu_has_bf16

        backend, precision = config.split("-", 1)
        if precision == "bf16" and not cpu_has_bf16():
            raise SystemExit("skipped: this CPU has no native bfloat16")
        encoder = Encoder(
            precision=precision,  # type: ignore[arg-type]
            threads=threads,
            backend=backend,  # type: ignore[arg-type]
            cache_dir=cache,
        )

        def encode(batch: list[str]) -> None:
            encoder.encode(batch)

    else:
        from monitor.classify import TextItem, load_classifier
        from monitor.settings import ScorerSettings

        classifier = load_classifier(ScorerSettings(threads=threads, model_cache=cache))
        result["precision"] = classifier._items.encoder.precision  # type: ignore[attr-defined]

        def encode(batch: list[Any]) -> None:
            classifier.score([b if isinstance(b, TextItem) else TextItem(b) for b in batch])

        real = [TextItem(t, s) for t, s in pairs]  # type: ignore[misc]
    long = long_texts([f"{t}. {s}" for t, s in pairs], n)
    lengths = [count_tokens(f"{t}. {s}") for t, s in pairs]
    result["mean_tokens_real"] = round(sum(lengths) / len(lengths), 1)
    for name, data in (("real", real), ("128", long)):
        result[f"{name}_b32"] = round(timed(encode, chunks(data, 32)), 1)
        result[f"{name}_b1"] = round(timed(encode, chunks(data[:batch1_items], 1)), 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 0)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=256, help="texts per measurement at batch 32")
    parser.add_argument("--batch1-items", type=int, default=64, help="texts per measurement at batch 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement (the best is shown)")
    parser.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global REPEAT  # noqa: PLW0603 (a module setting for the child process)
    REPEAT = args.repeat
    if args.one:
        print(json.dumps(run_one(args.one, args.items, args.threads, args.batch1_items, args.cache)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as cache:
        return compare(args, Path(cache))


def machine() -> str:
    """The CPU model, the CPUs this process may use and the package versions that matter here."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = []
    for package in ("onnxruntime", "torch", "transformers", "tokenizers", "numpy"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} absent")
    return (
        f"{cpu}; {len(os.sched_getaffinity(0))} CPUs usable; Python {platform.python_version()}; "
        + ", ".join(versions)
    )


def compare(args: argparse.Namespace, cache: Path) -> int:
    from monitor.classify.encoder import default_model_dir, weights_digest
    from monitor.classify.onnxgraph import ensure_graph

    model_dir = default_model_dir()
    for precision in ("fp32", "int8"):
        ensure_graph(model_dir, weights_digest(model_dir), precision, cache)  # type: ignore[arg-type]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    print(f"machine: {machine()}")
    print(
        f"classifier benchmark: {args.items} texts at batch 32, {args.batch1_items} at batch 1, "
        f"{args.threads} threads, best of {args.repeat} passes"
    )
    header = (
        f"{'config':<20} {'tokens':>6} {'real b1':>8} {'real b32':>9} {'128 b1':>8} {'128 b32':>8} "
        f"{'peak RSS':>9}"
    )
    print(header + "\n" + "-" * len(header))
    for config in args.configs:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                config,
                "--items",
                str(args.items),
                "--threads",
                str(args.threads),
                "--batch1-items",
                str(args.batch1_items),
                "--repeat",
                str(args.repeat),
                "--cache",
                str(cache),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{config:<20} {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        label = config + (f" ({r['precision']})" if "precision" in r else "")
        print(
            f"{label:<20} {r['mean_tokens_real']:>6} {r['real_b1']:>8} {r['real_b32']:>9} {r['128_b1']:>8} "
            f"{r['128_b32']:>8} {r['peak_rss_mb']:>6.0f} MB"
        )
    print("texts/s; 'tokens' = mean tokens of the real-length items; classifier = encoder + heads + evidence")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
