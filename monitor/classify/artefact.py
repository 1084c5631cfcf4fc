"""The trained heads on disk: ``heads.safetensors`` (weights) and ``heads.json`` (everything else).

``heads.json`` names the model and its version, the encoder the heads were fitted on, the labels and
feature groups of each head, the calibration that was folded into the weights and the figures measured
when training. The version is derived from the training data and the training recipe, so retraining on
the same data gives the same version (and the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.classify.lexicon import FEATURE_GROUPS
from monitor.classify.linear import Array, LinearHead
from monitor.errors import ModelError

WEIGHTS_FILE = "heads.safetensors"
META_FILE = "heads.json"
FORMAT = 1
PACKAGED_DIR = Path(__file__).resolve().parent / "heads"


def known_feature_group(group: str) -> bool:
    """Whether this build can compute the feature group ``group`` named in an artefact."""
    if group in ("embedding", "title_embedding"):
        return True
    return group.removeprefix("title:") in FEATURE_GROUPS


@dataclass(frozen=True)
class HeadSet:
    """The three heads plus their description."""

    relevance: LinearHead
    topics: LinearHead
    stance: LinearHead
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "minilm-heads"))

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    @property
    def encoder(self) -> str:
        return str(self.meta.get("encoder", ""))

    def heads(self) -> tuple[LinearHead, LinearHead, LinearHead]:
        return self.relevance, self.topics, self.stance

    def save(self, directory: Path) -> None:
        """Write the two files into ``directory`` (created if needed)."""
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, np.ndarray[Any, Any]] = {}
        described = []
        for head in self.heads():
            tensors[f"{head.name}.weight"] = head.weight.astype(np.float32)
            tensors[f"{head.name}.bias"] = head.bias.astype(np.float32)
            described.append(
                {
                    "name": head.name,
                    "kind": head.kind,
                    "labels": list(head.labels),
                    "features": list(head.features),
                }
            )
        save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": str(FORMAT)})
        meta = dict(self.meta)
        meta["format"] = FORMAT
        meta["heads"] = described
        (directory / META_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path | None = None) -> HeadSet:
        """Read the heads from ``directory`` (default: the ones packaged with monitor)."""
        directory = directory or PACKAGED_DIR
        meta_path, weights_path = directory / META_FILE, directory / WEIGHTS_FILE
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ModelError(
                "reading the classifier heads needs safetensors: install monitor[classifier]"
            ) from exc
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            tensors = load_file(str(weights_path))
        except FileNotFoundError as exc:
            raise ModelError(
                f"no trained heads in {directory}: run `monitor train` ({exc.filename} missing)"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the classifier heads in {directory}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ModelError(f"{meta_path}: head format {meta.get('format')!r}, this build reads {FORMAT}")
        heads: dict[str, LinearHead] = {}
        for spec in meta.get("heads", []):
            unknown = [g for g in spec["features"] if not known_feature_group(g)]
            if unknown:
                raise ModelError(f"{meta_path}: head {spec['name']} uses unknown feature groups {unknown}")
            weight: Array = tensors[f"{spec['name']}.weight"].astype(np.float64)
            bias: Array = tensors[f"{spec['name']}.bias"].astype(np.float64)
            heads[spec["name"]] = LinearHead(
                name=spec["name"],
                kind=spec["kind"],
                labels=tuple(spec["labels"]),
                features=tuple(spec["features"]),
                weight=weight,
                bias=bias,
            )
        missing = {"relevance", "topics", "stance"} - set(heads)
        if missing:
            raise ModelError(f"{meta_path}: heads {sorted(missing)} missing")
        return cls(heads["relevance"], heads["topics"], heads["stance"], meta)
