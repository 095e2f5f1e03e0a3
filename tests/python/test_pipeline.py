"""spikeflow.Pipeline: the live graph in process, predictions to Python with no ZeroMQ hop."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np

import spikeflow

IN_PROCESS = """
ingest: {{transport: none}}
chunking: {{deadline: false}}
decoder: {{checkpoint: "{ckpt}", path: fast}}
metrics: {{print_interval_s: 0}}
{extra}
"""


def packets(session, width_ns=50_000_000):
    """The session's spikes as time-ordered packets of one chunk width each, with the watermark."""
    t = np.concatenate(session.spike_times_ns)
    unit_idx = np.concatenate([np.full(len(s), i) for i, s in enumerate(session.spike_times_ns)])
    order = np.argsort(t, kind="stable")
    t, unit_idx = t[order], unit_idx[order]
    keys = session.units
    edges = np.arange(session.start_ns, session.end_ns + width_ns, width_ns)
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (t >= lo) & (t < hi)
        yield t[sel], keys[unit_idx[sel], 0], keys[unit_idx[sel], 1], int(hi)


def test_iterate_predictions_in_order_with_no_socket(checkpoint, session):
    p = spikeflow.Pipeline(yaml_text=IN_PROCESS.format(ckpt=checkpoint, extra=""))
    assert p.publish_endpoint == "none"
    p.start()
    n_spikes = 0
    for t, ch, u, watermark in packets(session):
        p.push(t, ch, u, device_time_ns=watermark)
        n_spikes += len(t)
    stats = p.stop()
    preds = list(p)
    assert len(preds) > 0
    seqs = [x.seq for x in preds]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert sum(x.n_tokens for x in preds) == n_spikes
    assert all(np.all(np.isfinite(x.values)) and x.values.shape == (2,) for x in preds)
    assert all(x.timing["publish_ns"] >= x.timing["decode_end_ns"] > 0 for x in preds)
    assert stats["python"]["dropped_predictions"] == 0
    assert p.dropped_predictions == 0


def test_run_delivers_to_a_callback_and_stops_on_request(checkpoint, session):
    p = spikeflow.Pipeline(yaml_text=IN_PROCESS.format(ckpt=checkpoint, extra=""))
    p.start()
    got = []
    pushed = threading.Event()

    def feed():  # runs while run() waits: run() releases the GIL
        for t, ch, u, watermark in packets(session):
            p.push(t, ch, u, device_time_ns=watermark)
        pushed.set()
        p.request_stop()

    th = threading.Thread(target=feed)
    th.start()
    stats = p.run(got.append)
    th.join()
    assert pushed.is_set()
    assert len(got) > 0 and [x.seq for x in got] == sorted(x.seq for x in got)
    assert stats["python"]["dropped_predictions"] == 0


def test_pipeline_predictions_equal_the_offline_decode(checkpoint, session):
    p = spikeflow.Pipeline(yaml_text=IN_PROCESS.format(ckpt=checkpoint, extra=""))
    p.start()
    for t, ch, u, watermark in packets(session):
        p.push(t, ch, u, device_time_ns=watermark)
    p.stop()
    live = {x.start_ns: x.values for x in p}
    chunks = spikeflow.session_chunks(session, width_ms=50.0)
    ref = spikeflow.decode_session(checkpoint, session, path="fast")
    common = [i for i, s in enumerate(chunks["start_ns"]) if int(s) in live]
    assert len(common) > 0.9 * len(chunks["start_ns"])
    diff = max(float(np.max(np.abs(live[int(chunks["start_ns"][i])] - ref[i]))) for i in common)
    print(f"in-process pipeline vs offline C++ decode: {len(common)} chunks, max abs diff {diff}")
    assert diff == 0.0


def test_recording_reads_back_as_numpy(checkpoint, session, tmp_path):
    rec = tmp_path / "run.sfrec"
    p = spikeflow.Pipeline(yaml_text=IN_PROCESS.format(ckpt=checkpoint, extra=f'record: {{path: "{rec}"}}'))
    p.start()
    n_packets = 0
    for t, ch, u, watermark in packets(session):
        p.push(t, ch, u, device_time_ns=watermark)
        n_packets += 1
    p.stop()
    live = list(p)
    r = spikeflow.read_recording(rec)
    assert r["clean_end"] and not r["truncated"] and not r["corrupt"]
    np.testing.assert_array_equal(r["units"], session.units)
    assert len(r["packets"]["arrival_host_ns"]) == n_packets
    assert r["packets"]["event_index"][-1] == len(r["packets"]["t_ns"]) == session.num_spikes
    pr = r["predictions"]
    np.testing.assert_array_equal(pr["seq"], [x.seq for x in live])
    np.testing.assert_array_equal(pr["values"], np.stack([x.values for x in live]))
    assert np.all(pr["publish_ns"] >= pr["decode_end_ns"])


def test_session_to_numpy_and_back(session, tmp_path):
    assert session.units.shape == (12, 2)
    assert len(session.spike_times_ns) == 12
    assert all(np.all(np.diff(t) >= 0) for t in session.spike_times_ns)
    assert session.behavior.shape == (len(session.behavior_t_ns), len(session.behavior_names))
    assert session.trials.shape[1] == 3
    path = tmp_path / "s.sfs"
    session.save(str(path))
    again = spikeflow.load_session(path)
    np.testing.assert_array_equal(again.units, session.units)
    np.testing.assert_array_equal(again.behavior, session.behavior)
    for a, b in zip(again.spike_times_ns, session.spike_times_ns):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_stops_the_pipeline_cleanly(checkpoint, session, tmp_path):
    """A script blocked in Pipeline.run() gets SIGINT: run() stops the pipeline (drained) and
    raises KeyboardInterrupt, which the script catches. The script says "in run" from its
    callback, so the signal is sent while run() is running."""
    cfg = tmp_path / "live.yaml"
    cfg.write_text(IN_PROCESS.format(ckpt=checkpoint, extra=""))
    CHANNEL, UNIT = (int(x) for x in session.units[0])
    script = textwrap.dedent(f"""
        import sys, threading, numpy as np, spikeflow
        p = spikeflow.Pipeline({str(cfg)!r})
        p.start()
        said = []
        def on_prediction(pred):
            if not said:
                said.append(1)
                print("in run", flush=True)
        feed = threading.Thread(target=lambda: p.push(np.array([1000], np.int64), np.array([{CHANNEL}], np.uint32),
                                                      np.array([{UNIT}], np.uint16), device_time_ns=200_000_000))
        feed.start()
        try:
            p.run(on_prediction)
        except KeyboardInterrupt:
            feed.join()
            s = p.stats()
            print("stopped cleanly", s["python"]["stopped"], s["python"]["dropped_predictions"], flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    try:
        for line in proc.stdout:  # the pipeline's own log lines may come first
            if line.startswith("in run"):
                break
        else:
            raise AssertionError(proc.stderr.read())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped cleanly True 0" in out
