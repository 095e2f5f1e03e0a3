"""spikeflow.Decoder against the C++ fast path, binned-count input and bad input."""

import numpy as np
import pytest

import spikeflow


def test_step_matches_cpp_fast_path_exactly(checkpoint, session):
    dec = spikeflow.Decoder(checkpoint, path="fast")
    chunks = spikeflow.session_chunks(session, width_ms=50.0, unit_order=dec.unit_map)
    ours = np.stack([dec.step(u, o) for u, o in zip(chunks["units"], chunks["offsets"])])
    ref = spikeflow.decode_session(checkpoint, session, path="fast")
    assert ours.shape == ref.shape == (len(chunks["units"]), 2)
    assert np.all(np.isfinite(ours))
    diff = float(np.max(np.abs(ours - ref)))
    print(f"python Decoder vs C++ fast path: {ours.shape[0]} chunks, max abs diff {diff}")
    assert diff == 0.0


def test_reset_replays_the_same_numbers(checkpoint, session):
    dec = spikeflow.Decoder(checkpoint, path="fast")
    chunks = spikeflow.session_chunks(session, width_ms=50.0, unit_order=dec.unit_map)
    first = [dec.step(u, o) for u, o in list(zip(chunks["units"], chunks["offsets"]))[:20]]
    dec.reset()
    again = [dec.step(u, o) for u, o in list(zip(chunks["units"], chunks["offsets"]))[:20]]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))


def tokens_for(counts, bin_s):
    """The documented rule: count c of unit u -> c tokens at (k + 0.5) * bin_s / c, time order."""
    units, offsets = [], []
    for u, c in enumerate(counts):
        for k in range(int(c)):
            units.append(u)
            offsets.append(np.float32((k + 0.5) * bin_s / int(c)))
    order = np.argsort(np.array(offsets, dtype=np.float32), kind="stable")
    return np.array(units, np.int32)[order], np.array(offsets, np.float32)[order]


def test_step_counts_is_step_on_evenly_spaced_tokens(checkpoint20):
    rng = np.random.default_rng(0)
    a = spikeflow.Decoder(checkpoint20, path="fast")
    b = spikeflow.Decoder(checkpoint20, path="fast")
    n_units = a.unit_map.shape[0]
    counts = rng.poisson(0.6, size=(40, n_units))
    batched = a.step_counts(counts, 0.02)
    assert batched.shape == (40, 2)
    one_by_one = np.stack([b.step(*tokens_for(c, 0.02)) for c in counts])
    np.testing.assert_array_equal(batched, one_by_one)
    a.reset()
    np.testing.assert_array_equal(a.step_counts(counts[0].astype(np.float64), 0.02), batched[0])


def test_unit_map_output_names_and_width(checkpoint, session):
    dec = spikeflow.Decoder(checkpoint)
    np.testing.assert_array_equal(dec.unit_map, session.units)
    assert dec.output_names == ["y0", "y1"]
    assert dec.output_dim == 2
    assert dec.chunk_width_s == pytest.approx(0.05)


def test_bad_input_is_a_clear_error(checkpoint, tmp_path):
    dec = spikeflow.Decoder(checkpoint)
    n = dec.unit_map.shape[0]
    with pytest.raises(ValueError, match="unit index"):
        dec.step(np.array([n], np.int32), np.array([0.01], np.float32))
    with pytest.raises(ValueError, match="offset"):
        dec.step(np.array([0], np.int32), np.array([0.2], np.float32))
    with pytest.raises(ValueError, match="same length"):
        dec.step(np.array([0, 1], np.int32), np.array([0.01], np.float32))
    with pytest.raises(ValueError, match="chunk width"):
        dec.step_counts(np.zeros(n), 0.02)
    with pytest.raises(ValueError, match="whole numbers"):
        dec.step_counts(np.full(n, 0.5), 0.05)
    with pytest.raises(ValueError, match="n_units"):
        dec.step_counts(np.zeros(n + 1), 0.05)
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(RuntimeError, match="missing.ckpt"):
        spikeflow.Decoder(str(missing))
