"""spikeflow.train: the trainer from Python, with its progress bar."""

import numpy as np

import spikeflow


def test_train_writes_a_checkpoint_python_can_decode(session, tmp_path, capfd):
    out = tmp_path / "trained.ckpt"
    session = spikeflow.synthesize_session(num_units=12, duration_s=60.0, seed=5)  # enough trials to split
    r = spikeflow.train(session, out, epochs=1, dim=32, rnn_hidden=32, threads=1, progress=True,
                        baselines_out=str(tmp_path / "base"))
    assert r["epochs_run"] == 1 and r["best_epoch"] == 1
    assert len(r["test_r2_per_dim"]) == 2
    assert out.exists() and (tmp_path / "base.ridge.ckpt").exists() and (tmp_path / "base.kalman.ckpt").exists()
    assert capfd.readouterr().err != ""  # the progress bar went to stderr
    dec = spikeflow.Decoder(str(out))
    assert dec.output_names == list(session.behavior_names)
    ridge = spikeflow.Decoder(str(tmp_path / "base.ridge.ckpt"))
    chunks = spikeflow.session_chunks(session, width_ms=50.0)
    y = ridge.step(chunks["units"][0], chunks["offsets"][0])
    assert y.shape == (2,) and np.all(np.isfinite(y))
