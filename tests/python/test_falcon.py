"""The FALCON adapter driven by a small stand-in for FALCON's evaluator: the same calls in the same
order (reset per session batch, predict or observe per 20 ms bin, on_done per bin)."""

import numpy as np
import pytest

import spikeflow
from spikeflow.falcon import SpikeflowFalconDecoder


def binned(session, bin_s=0.02):
    """(n_bins, n_units) counts of the session in bin_s bins, and per-bin trial ends."""
    edges = np.arange(session.start_ns, session.end_ns + 1, int(bin_s * 1e9))
    counts = np.stack([np.histogram(t, bins=edges)[0] for t in session.spike_times_ns], axis=1)
    ends = np.zeros(len(edges) - 1, bool)
    for end in session.trials[:, 1]:
        i = np.searchsorted(edges, end, side="right") - 2
        if 0 <= i < len(ends):
            ends[i] = True
    return counts.astype(np.float64), ends


def stand_in_evaluator(decoder, sessions, tags, observe_first=5):
    """Serves a batch of sessions bin by bin as FALCON's evaluator does; returns per-session
    predictions (n_bins, out) for the bins where it asked for predictions."""
    data = [binned(s) for s in sessions]
    n = max(len(c) for c, _ in data)
    decoder.reset(dataset_tags=tags)
    preds = [[] for _ in sessions]
    for t in range(n):
        obs = np.zeros((decoder.batch_size, data[0][0].shape[1]))
        dones = np.zeros(decoder.batch_size, bool)
        for i, (c, e) in enumerate(data):
            if t < len(c):
                obs[i], dones[i] = c[t], e[t]
        if t < observe_first:
            decoder.observe(obs)  # start of trial: data without predictions
            out = None
        else:
            out = decoder.predict(obs)
            assert out.shape == (decoder.batch_size, 2)
        for i, (c, _) in enumerate(data):
            if out is not None and t < len(c):
                preds[i].append(out[i])
        decoder.on_done(dones)
    return [np.stack(p) for p in preds]


def test_falcon_adapter_scores_a_batch_of_sessions(checkpoint20, session):
    other = spikeflow.synthesize_session(num_units=12, duration_s=8.0, seed=4)
    dec = SpikeflowFalconDecoder({"sess-a": checkpoint20, "sess-b": checkpoint20}, batch_size=2)
    preds = stand_in_evaluator(dec, [session, other], ["sess-a", "sess-b"])
    # Each slot is its own decoder: the same as stepping that session's bins alone.
    for s, p in zip([session, other], preds):
        ref = spikeflow.Decoder(checkpoint20).step_counts(binned(s)[0], 0.02)[5:]
        np.testing.assert_array_equal(p, ref)
    assert dec.dones_seen > 0
    # A second evaluation after reset() gives the same numbers (state cleared).
    again = stand_in_evaluator(dec, [session, other], ["sess-a", "sess-b"])
    for a, b in zip(preds, again):
        np.testing.assert_array_equal(a, b)


def test_wider_chunks_gather_bins_causally(checkpoint60, session):
    dec = SpikeflowFalconDecoder(checkpoint60, batch_size=1)
    (p,) = stand_in_evaluator(dec, [session], ["any"], observe_first=0)
    counts = binned(session)[0]
    ref = spikeflow.Decoder(checkpoint60)
    n_chunks = len(counts) // 3
    for k in range(n_chunks):
        # bins 3k, 3k+1 repeat the previous chunk's prediction; bin 3k+2 completes chunk k
        u, o = [], []
        for j in range(3):
            for unit, c in enumerate(counts[3 * k + j]):
                for m in range(int(c)):
                    u.append(unit)
                    o.append(np.float32(j * 0.02 + (m + 0.5) * 0.02 / int(c)))
        order = np.argsort(np.array(o, np.float32), kind="stable")
        y = ref.step(np.array(u, np.int32)[order], np.array(o, np.float32)[order])
        np.testing.assert_array_equal(p[3 * k + 2], y)
        if k > 0:
            np.testing.assert_array_equal(p[3 * k], p[3 * k - 1])


def test_adapter_rejects_what_it_cannot_score(checkpoint, checkpoint20):
    with pytest.raises(ValueError, match="whole number"):
        SpikeflowFalconDecoder(checkpoint, batch_size=1, bin_s=0.03).reset(["x"])
    dec = SpikeflowFalconDecoder({"a": checkpoint20}, batch_size=1)
    with pytest.raises(KeyError, match="no checkpoint"):
        dec.reset(["b"])
    dec.reset(["a"])
    with pytest.raises(ValueError, match="channels"):
        dec.predict(np.zeros((1, 5)))
