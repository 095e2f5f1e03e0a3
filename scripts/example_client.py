#!/usr/bin/env python3
"""Minimal spikeflow prediction subscriber: pyzmq + struct, nothing else.

Decodes the binary prediction message documented in README.md ("Prediction message") and
stages/prediction_codec.h, or the JSON payload when the pipeline runs with publish.format: json.
Prints one JSON object per prediction on stdout.

    python3 scripts/example_client.py --endpoint tcp://127.0.0.1:47001 --count 20
"""
import argparse
import json
import struct
import sys

import zmq

# magic, version, output_dim, flags, n_tokens, seq, start_ns, end_ns, then six host timestamps
# (version 1 ends here), then chunk_index, epoch and a reserved word (version 2).
HEADER_V1 = struct.Struct("<IHHIIqqqqqqqqq")
HEADER = struct.Struct("<IHHIIqqqqqqqqqqII")
MAGIC = 0x52504653  # bytes 'S' 'F' 'P' 'R'
TIMING = ("trigger_arrival_ns", "close_ns", "tokenize_ns", "decode_start_ns", "decode_end_ns", "publish_ns")
FLAGS = ("empty", "closed_by_deadline", "had_late_events", "catch_up", "output_repaired",
         "end_of_stream", "unknown_units", "backlog_shed", "new_epoch", "no_source")


def parse(payload: bytes) -> dict:
    if payload[:1] == b"{":
        return json.loads(payload)
    if len(payload) < HEADER_V1.size:
        raise ValueError("payload shorter than the header")
    version = struct.unpack_from("<H", payload, 4)[0]
    header = HEADER if version == 2 else HEADER_V1
    if len(payload) < header.size:
        raise ValueError("payload shorter than the header")
    fields = header.unpack_from(payload)
    magic, version, dim, flags, n_tokens, seq, start_ns, end_ns = fields[:8]
    if magic != MAGIC or version not in (1, 2):
        raise ValueError("not a spikeflow v1/v2 prediction")
    if len(payload) != header.size + 4 * dim:
        raise ValueError("payload size disagrees with output_dim")
    values = list(struct.unpack_from("<%df" % dim, payload, header.size))
    chunk_index, epoch = (fields[14], fields[15]) if version == 2 else (seq, 0)
    return {
        "version": version, "seq": seq, "chunk_index": chunk_index, "epoch": epoch,
        "start_ns": start_ns, "end_ns": end_ns, "flags": flags, "n_tokens": n_tokens,
        "values": values, "timing": dict(zip(TIMING, fields[8:14])),
        "flag_names": [name for bit, name in enumerate(FLAGS) if flags & (1 << bit)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:47001")
    ap.add_argument("--topic", default="pred")
    ap.add_argument("--count", type=int, default=0, help="exit after this many (0 = run until Ctrl-C)")
    ap.add_argument("--timeout-s", type=float, default=0, help="give up after this long without a message")
    args = ap.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt_string(zmq.SUBSCRIBE, args.topic)
    sub.connect(args.endpoint)
    if args.timeout_s > 0:
        sub.setsockopt(zmq.RCVTIMEO, int(args.timeout_s * 1000))
    received = 0
    try:
        while args.count == 0 or received < args.count:
            try:
                topic, payload = sub.recv_multipart()
            except zmq.Again:
                print("example_client: timed out", file=sys.stderr)
                return 1
            msg = parse(payload)
            msg["topic"] = topic.decode()
            print(json.dumps(msg), flush=True)
            received += 1
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
