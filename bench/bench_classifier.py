"""Benchmark the classifier: texts/s at batch 1 and 32, real-length items and fixed 128-token texts, peak RSS.

Each configuration runs in a fresh child process (so its peak RSS is its own), on the same texts, with
the same number of torch threads (default 2, like CI):

* ``baseline``  plain transformers: AutoModel fp32, tokenizer padding to the batch's longest text in input
  order, mean pooling (what a straightforward implementation does);
* ``encoder-<precision>``  this project's encoder (length bucketing, dynamic padding; fp32, bf16, int8);
* ``classifier``  the whole scorer classifier as the scorer runs it (default settings: auto precision,
  chunking, three heads and sentence evidence).

Real-length texts are the project's labelled items (headline + summary, as the scorer reads them);
128-token texts are items joined until the tokenizer cuts them at exactly 128 tokens.

    .venv/bin/python bench/bench_classifier.py               # 256 texts, 2 threads
    .venv/bin/python bench/bench_classifier.py --items 512 --threads 4 --configs baseline classifier
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("baseline", "encoder-fp32", "encoder-int8", "encoder-bf16", "classifier")


def texts(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    """(real-length texts, the same as (title, summary) pairs); labelled items in file order, cycled."""
    from monitor.classify.data import read_training_data

    items = read_training_data()
    pairs = [(i.title, i.summary) for i in items]
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    return [f"{t}. {s}" for t, s in pairs], pairs


@functools.cache
def _tokenizer() -> Any:
    from monitor.classify.encoder import default_model_dir
    from monitor.classify.minilm import load_tokenizer

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


def run_one(config: str, n: int, threads: int, batch1_items: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    real, pairs = texts(n)
    result: dict[str, Any] = {"config": config, "threads": threads}
    if config == "baseline":
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
    elif config.startswith("encoder-"):
        from monitor.classify.encoder import Encoder

        encoder = Encoder(precision=config.split("-", 1)[1], threads=threads)  # type: ignore[arg-type]

        def encode(batch: list[str]) -> None:
            encoder.encode(batch)

    else:
        from monitor.classify import TextItem, load_classifier
        from monitor.settings import ScorerSettings

        classifier = load_classifier(ScorerSettings(threads=threads))
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
    args = parser.parse_args()
    global REPEAT  # noqa: PLW0603 (a module setting for the child process)
    REPEAT = args.repeat
    if args.one:
        print(json.dumps(run_one(args.one, args.items, args.threads, args.batch1_items)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    print(
        f"classifier benchmark: {args.items} texts at batch 32, {args.batch1_items} at batch 1, "
        f"{args.threads} torch threads, {os.cpu_count()} CPUs visible"
    )
    header = (
        f"{'config':<14} {'tokens':>6} {'real b1':>8} {'real b32':>9} {'128 b1':>8} {'128 b32':>8} "
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
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{config:<14} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        label = config + (f" ({r['precision']})" if "precision" in r else "")
        print(
            f"{label:<14} {r['mean_tokens_real']:>6} {r['real_b1']:>8} {r['real_b32']:>9} {r['128_b1']:>8} "
            f"{r['128_b32']:>8} {r['peak_rss_mb']:>6.0f} MB"
        )
    print("texts/s; 'tokens' = mean tokens of the real-length items; classifier = encoder + heads + evidence")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
