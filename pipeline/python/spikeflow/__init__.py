"""spikeflow from Python: decoders, sessions, recordings, training and the live pipeline.

A thin layer over the C++ core (the ``_spikeflow`` extension built by CMake next to this file):
numpy arrays in and out, the GIL released around every long call. Build tree use::

    PYTHONPATH=build/python python3 -c 'import spikeflow'

Decoder
    ``Decoder(checkpoint)`` steps a checkpoint chunk by chunk: ``step(units, offsets)`` takes one
    chunk's tokens (model unit index, offset in seconds inside the chunk); ``step_counts(counts,
    bin_s)`` takes binned counts, one bin = one chunk (``bin_s`` must equal the checkpoint's chunk
    width): a count c of unit u becomes c tokens of u at offsets (k + 0.5) * bin_s / c,
    k = 0..c-1 (evenly spaced, centred), in time order. ``counts`` of shape (n_bins, n_units) are
    decoded in order in one call. Same numbers as the C++ fast path (tests/python).
Pipeline
    ``Pipeline(config).run(callback)`` runs the live graph in this process and hands every
    prediction to ``callback`` (or iterate: ``for p in pipeline``), with no ZeroMQ hop; Ctrl-C stops
    it cleanly (drained) and then raises KeyboardInterrupt as usual.
Training
    ``train(session, out)`` and ``calibrate(base, session, out)`` run the same C++ code as
    `spikeflow train` / `spikeflow calibrate`: same options, progress bar, printed comparison;
    the comparison comes back as a dict.
FALCON
    ``spikeflow.falcon.SpikeflowFalconDecoder`` adapts a checkpoint to FALCON's BCIDecoder calls.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from . import _spikeflow
from ._spikeflow import Decoder, Prediction, Session, UnitKey  # noqa: F401

__all__ = [
    "Decoder",
    "Pipeline",
    "Prediction",
    "Session",
    "UnitKey",
    "calibrate",
    "decode_session",
    "load_session",
    "read_recording",
    "save_untrained_checkpoint",
    "session_chunks",
    "synthesize_session",
    "train",
]


def _unit_keys(units) -> list:
    """(n, 2) array-like of (channel, unit code), or UnitKeys -> list of UnitKey."""
    if units is None:
        return []
    out = []
    for u in units:
        if isinstance(u, UnitKey):
            out.append(u)
        else:
            channel, code = u
            out.append(UnitKey(int(channel), int(code)))
    return out


def load_session(path: str) -> Session:
    """A session file (.sfs, .mat, .nwb): units, spike_times_ns, behavior, trials as numpy."""
    return Session.load(os.fspath(path))


def synthesize_session(num_units: int = 96, duration_s: float = 300.0, seed: int = 1) -> Session:
    """The synthetic center-out session `spikeflow synth` writes."""
    return Session.synthesize(num_units=num_units, duration_s=duration_s, seed=seed)


def session_chunks(session: Session, width_ms: float = 50.0, unit_order=None,
                   from_ns: int = -(2**63), to_ns: int = 2**63 - 1) -> dict:
    """The session cut into chunks exactly as training and evaluation cut them.

    Returns a dict: units / offsets (lists of per-chunk arrays, ready for Decoder.step), seq,
    start_ns, targets (n_chunks, output_dim), trial, output_names, dropped_spikes.
    """
    return _spikeflow.session_chunks(session, width_ms=width_ms, from_ns=from_ns, to_ns=to_ns,
                                     unit_order=_unit_keys(unit_order))


def decode_session(checkpoint: str, session: Session, path: str = "auto",
                   from_ns: int = -(2**63), to_ns: int = 2**63 - 1) -> np.ndarray:
    """C++ offline decode of the session (models::decode_dataset): (n_chunks, output_dim)."""
    return _spikeflow.decode_session(os.fspath(checkpoint), session, path=path, from_ns=from_ns, to_ns=to_ns)


def read_recording(path: str) -> dict:
    """A recording (`spikeflow run --record`): config, model, units, packets and predictions.

    packets: arrival_host_ns, device_time_ns per packet; t_ns, channel, unit per event, with
    packet i's events at [event_index[i], event_index[i+1]). predictions: seq, start_ns, end_ns,
    flags, n_tokens, values (n, output_dim) and every timing field (host ns). clean_end,
    truncated, corrupt and problem say how reading ended.
    """
    return _spikeflow.read_recording(os.fspath(path))


def _given(**options) -> dict:
    """The options the caller set (None = the C++ default, as the CLI's)."""
    return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in options.items() if v is not None}


def train(session: Session, out: str, *, width_ms: Optional[float] = None, train_fraction: Optional[float] = None,
          val_fraction: Optional[float] = None, epochs: Optional[int] = None, max_seconds: Optional[float] = None,
          seed: Optional[int] = None, threads: Optional[int] = None, dim: Optional[int] = None,
          rnn_hidden: Optional[int] = None, backbone: Optional[str] = None, progress: bool = True,
          baselines: bool = True, baselines_out: Optional[str] = None, report: bool = True, **training) -> dict:
    """Trains a POSSM checkpoint exactly as `spikeflow train` does (the same C++ run: split,
    training, held-out comparison with ridge and Kalman), with the progress bar on stderr and the
    CLI's report printed to sys.stdout (report=False: silent).

    Options left at None take the CLI's defaults (width_ms 50, train_fraction 0.7, val_fraction
    0.1, epochs 60, threads 2, dim 64, rnn_hidden 256, backbone "gru"); ``training`` takes the
    other flags by their Python names: batch, lr, weight_decay, unit_dropout, patience, search,
    finetune (a checkpoint to fine-tune from). baselines_out: also save PREFIX.ridge.ckpt /
    PREFIX.kalman.ckpt. Out-of-range or unknown options raise ValueError.

    Returns best_val_r2, best_val_r2_per_dim, best_epoch, epochs_run, seconds, num_parameters,
    test_r2_per_dim (held-out part, streamed), test ({"possm", "ridge", "kalman"}: r2_mean,
    r2_per_dim), chunks and checkpoint.
    """
    options = _given(width_ms=width_ms, train_fraction=train_fraction, val_fraction=val_fraction, epochs=epochs,
                     max_seconds=max_seconds, seed=seed, threads=threads, dim=dim, rnn_hidden=rnn_hidden,
                     backbone=backbone, progress=progress, baselines=baselines, baselines_out=baselines_out,
                     **training)
    return _spikeflow.train(session, os.fspath(out), options, report)


def calibrate(base: str, session, out: str, *, calibration_s: Optional[float] = None,
              test_fraction: Optional[float] = None, val_share: Optional[float] = None,
              reid_epochs: Optional[int] = None, finetune_epochs: Optional[int] = None, finetune: bool = True,
              scratch: bool = True, progress: bool = True, report: bool = True, **training) -> dict:
    """Calibrates a pretrained multi-session checkpoint (`spikeflow pretrain`) to a new session,
    exactly as `spikeflow calibrate` does (the same C++ run): unit re-identification on the
    session's first ``calibration_s`` seconds, then fine-tuning (``finetune=False``: stage 1 only),
    compared on the held-out last ``test_fraction`` with the same architecture trained from scratch
    (``scratch=False``: skipped), ridge and Kalman, all fitted on the same calibration block. The
    CLI's comparison is printed to sys.stdout (report=False: silent), the progress bar to stderr.

    ``session``: a Session or a session file path (.sfs, .mat, .nwb). Options left at None take the
    CLI's defaults (calibration_s 60, test_fraction 0.2, val_share 0.2, reid_epochs 80,
    finetune_epochs 40); ``training`` takes epochs, max_seconds, batch, lr, weight_decay,
    unit_dropout (0.2), seed, threads, patience, reid_lr_scale, finetune_lr_scale.

    Returns a dict: calibrated / scratch / ridge / kalman (each r2_mean, r2_per_dim; scratch only
    when run), winner (the best mean R², one of those names), reid and finetune (best_val_r2,
    best_epoch, epochs_run, seconds), finetune_kept, base_sessions, chunks, checkpoint.
    """
    if isinstance(session, Session):
        label = "session"
    else:
        label = os.fspath(session)
        session = load_session(label)
    options = _given(calibration_s=calibration_s, test_fraction=test_fraction, val_share=val_share,
                     reid_epochs=reid_epochs, finetune_epochs=finetune_epochs, finetune=finetune, scratch=scratch,
                     progress=progress, **training)
    return _spikeflow.calibrate(os.fspath(base), session, label, os.fspath(out), options, report)


def save_untrained_checkpoint(path: str, units, output_dim: int = 2, width_ms: float = 50.0,
                              dim: int = 64, rnn_hidden: int = 256, seed: int = 0) -> None:
    """A POSSM checkpoint with seeded random weights (tests, plumbing checks)."""
    _spikeflow.save_untrained_checkpoint(os.fspath(path), _unit_keys(units), output_dim=output_dim,
                                         width_ms=width_ms, dim=dim, rnn_hidden=rnn_hidden, seed=seed)


class Pipeline:
    """The live pipeline in this process (pipeline/embedded_pipeline.h).

    ``config`` is a YAML file as for `spikeflow run` (or pass ``yaml_text``); ``checkpoint``
    overrides decoder.checkpoint. No ZeroMQ socket is opened unless ``publish=True``. Predictions
    wait in a queue of ``queue_capacity`` for Python; when it is full the newest are dropped and
    counted (``dropped_predictions``, ``stats()["python"]``).

    With ``ingest.transport: none`` feed spikes with ``push(t_ns, channel, unit)``.
    """

    def __init__(self, config: Optional[str] = None, *, yaml_text: str = "", checkpoint: Optional[str] = None,
                 publish: bool = False, queue_capacity: int = 65536):
        self._p = _spikeflow.Pipeline(config=os.fspath(config) if config else "", yaml_text=yaml_text,
                                      checkpoint=os.fspath(checkpoint) if checkpoint else "",
                                      publish=publish, queue_capacity=queue_capacity)

    def start(self) -> "Pipeline":
        self._p.start()
        return self

    def push(self, t_ns, channel, unit, device_time_ns: int = -1) -> None:
        """One packet of spikes: device times (ns), channels and unit codes, equal lengths."""
        self._p.push(np.asarray(t_ns, dtype=np.int64), np.asarray(channel, dtype=np.uint32),
                     np.asarray(unit, dtype=np.uint16), device_time_ns)

    def run(self, callback: Optional[Callable[[Prediction], None]] = None, duration_s: float = 0.0) -> dict:
        """Blocks, calling callback(prediction) in seq order, until duration_s (0: until stop() or
        Ctrl-C). Stops cleanly (drained) before returning or raising; returns stats()."""
        return self._p.run(callback, duration_s)

    def stop(self) -> dict:
        """Drains (every chunk binned so far is decoded and queued) and stops; returns stats()."""
        return self._p.stop()

    def request_stop(self) -> None:
        """Any thread: makes run() / the iterator stop the pipeline (drained) and return."""
        self._p.request_stop()

    def poll(self, timeout_s: float = 0.0) -> Optional[Prediction]:
        return self._p.poll(timeout_s)

    def __iter__(self):
        return self._p.__iter__()

    def __enter__(self) -> "Pipeline":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stats(self) -> dict:
        return self._p.stats()

    @property
    def dropped_predictions(self) -> int:
        return self._p.dropped_predictions

    @property
    def ingest_port(self) -> int:
        return self._p.ingest_port

    @property
    def publish_endpoint(self) -> str:
        return self._p.publish_endpoint

    @property
    def unit_map(self) -> np.ndarray:
        return self._p.unit_map

    @property
    def output_dim(self) -> int:
        return self._p.output_dim

    @property
    def chunk_width_s(self) -> float:
        return self._p.chunk_width_s
