"""A spikeflow checkpoint behind FALCON's decoder interface (falcon_challenge.interface.BCIDecoder).

FALCON's evaluator serves binned spike counts (20 ms bins) for a batch of sessions at once and
calls, per session batch::

    decoder.reset(dataset_tags)          # one tag per batch slot, when any session changes
    decoder.predict(obs)  /  observe(obs)  # obs: (batch_size, n_channels) counts -> (batch_size, out)
    decoder.on_done(dones)               # (batch_size,) flags: trial i just ended

Each batch slot gets its own spikeflow.Decoder (recurrent state per session). The checkpoint's
unit map must list the benchmark's channels in column order (train on a session whose units are
those channels). Its chunk width must be a whole number k of bins: with k = 1 each bin is one
chunk (Decoder.step_counts); with k > 1 bins are gathered k at a time into one chunk (each bin's
tokens inside its own slice of the chunk) and predict() repeats the last prediction (zeros
before the first) until the chunk is complete — causal, as the live pipeline is. State carries
across trials within a session (on_done does not reset it), as spikeflow decodes live.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Union

import numpy as np

from ._spikeflow import Decoder

try:  # subclass the real interface when the benchmark's package is installed
    from falcon_challenge.interface import BCIDecoder as _Base  # type: ignore
except ImportError:  # pragma: no cover - the benchmark is optional
    _Base = object

FALCON_BIN_S = 0.02


class _Slot:
    def __init__(self, decoder: Decoder, bin_s: float):
        self.decoder = decoder
        k = decoder.chunk_width_s / bin_s
        self.bins_per_chunk = int(round(k))
        if self.bins_per_chunk < 1 or abs(k - self.bins_per_chunk) > 1e-6:
            raise ValueError(
                f"checkpoint chunk width {decoder.chunk_width_s * 1e3:g} ms is not a whole number of "
                f"{bin_s * 1e3:g} ms bins")
        self.bin_s = bin_s
        self.reset()

    def reset(self) -> None:
        self.decoder.reset()
        self.pending: List[np.ndarray] = []
        self.last = np.zeros(self.decoder.output_dim, dtype=np.float32)

    def step(self, counts: np.ndarray) -> np.ndarray:
        if self.bins_per_chunk == 1:
            self.last = self.decoder.step_counts(counts, self.bin_s)
            return self.last
        if np.any(counts < 0) or np.any(counts != np.floor(counts)) or not np.all(np.isfinite(counts)):
            raise ValueError("predict: counts must be whole, non-negative numbers")
        self.pending.append(counts)
        if len(self.pending) == self.bins_per_chunk:
            units, offsets = [], []
            for j, c in enumerate(self.pending):
                for u in np.flatnonzero(c):
                    n = int(c[u])
                    units.append(np.full(n, u, dtype=np.int32))
                    offsets.append(j * self.bin_s + (np.arange(n) + 0.5) * self.bin_s / n)
            u = np.concatenate(units) if units else np.zeros(0, np.int32)
            o = np.concatenate(offsets).astype(np.float32) if offsets else np.zeros(0, np.float32)
            order = np.argsort(o, kind="stable")
            self.last = self.decoder.step(u[order], o[order])
            self.pending = []
        return self.last


class SpikeflowFalconDecoder(_Base):
    """checkpoints: one path for every session, or {dataset_tag: path} (with an optional "" or
    "default" entry for tags not listed). task_config is FALCON's FalconConfig (kept, unused)."""

    def __init__(self, checkpoints: Union[str, os.PathLike, Dict[str, str]], task_config=None,
                 batch_size: int = 1, bin_s: float = FALCON_BIN_S, device: str = "cpu", path: str = "auto"):
        self._task_config = task_config
        self.batch_size = batch_size
        self.bin_s = bin_s
        self._checkpoints = ({"": os.fspath(checkpoints)} if not isinstance(checkpoints, dict)
                             else {k: os.fspath(v) for k, v in checkpoints.items()})
        self._device, self._path = device, path
        self._slots: List[Optional[_Slot]] = [None] * batch_size
        self._slot_ckpt: List[Optional[str]] = [None] * batch_size
        self.dones_seen = 0

    def _checkpoint_for(self, tag: str) -> str:
        tag = str(tag)
        for key in (tag, os.path.basename(tag), "", "default"):
            if key in self._checkpoints:
                return self._checkpoints[key]
        raise KeyError(f"no checkpoint for dataset tag '{tag}' (known: {sorted(self._checkpoints)})")

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._slots = (self._slots + [None] * batch_size)[:batch_size]
        self._slot_ckpt = (self._slot_ckpt + [None] * batch_size)[:batch_size]

    def reset(self, dataset_tags: List[str] = [""]) -> None:  # noqa: B006 - FALCON's signature
        tags = list(dataset_tags) + [""] * (self.batch_size - len(dataset_tags))
        if len(tags) > self.batch_size:
            raise ValueError(f"reset: {len(tags)} dataset tags for batch_size {self.batch_size}")
        has_default = "" in self._checkpoints or "default" in self._checkpoints
        for i, tag in enumerate(tags):
            if not tag and not has_default:
                self._slots[i] = None  # padding slot: predictions are zeros
                continue
            ckpt = self._checkpoint_for(tag)
            if self._slot_ckpt[i] != ckpt or self._slots[i] is None:
                self._slots[i] = _Slot(Decoder(ckpt, device=self._device, path=self._path), self.bin_s)
                self._slot_ckpt[i] = ckpt
            else:
                self._slots[i].reset()

    def predict(self, neural_observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(neural_observations)
        if obs.ndim == 1:
            obs = obs[None, :]
        if obs.ndim != 2 or obs.shape[0] > self.batch_size:
            raise ValueError(f"predict: observations of shape {obs.shape}, expected (<= {self.batch_size}, n_channels)")
        out_dim = max((s.decoder.output_dim for s in self._slots if s is not None), default=0)
        out = np.zeros((obs.shape[0], out_dim), dtype=np.float32)
        for i in range(obs.shape[0]):
            slot = self._slots[i]
            if slot is None:
                continue
            n_units = slot.decoder.unit_map.shape[0]
            if obs.shape[1] != n_units:
                raise ValueError(f"predict: {obs.shape[1]} channels, the checkpoint of slot {i} has {n_units} units")
            y = slot.step(obs[i])
            out[i, : y.shape[0]] = y
        return out

    def observe(self, neural_observations: np.ndarray) -> None:
        self.predict(neural_observations)

    def on_done(self, dones: np.ndarray) -> None:
        self.dones_seen += int(np.count_nonzero(dones))
