// Wire format of a published prediction (documented in README.md, "Prediction message").
// ZeroMQ multipart message: frame 0 = topic (ASCII, e.g. "pred"), frame 1 = payload.
// Binary payload, version 2, little-endian:
//
//   offset size type  field
//   0      4    u32   magic = 0x52504653 (bytes 'S' 'F' 'P' 'R')
//   4      2    u16   version = 2
//   6      2    u16   output_dim (n)
//   8      4    u32   flags (core::ChunkFlag bits)
//   12     4    u32   n_tokens
//   16     8    i64   seq: +1 per published prediction for the whole run (never repeats, never
//   back) 24     8    i64   start_ns (device clock) 32     8    i64   end_ns 40     8    i64
//   trigger_arrival_ns (host CLOCK_MONOTONIC; 0 = not recorded) 48     8    i64   close_ns 56     8
//   i64   tokenize_ns 64     8    i64   decode_start_ns 72     8    i64   decode_end_ns 80     8
//   i64   publish_ns 88     8    i64   chunk_index: the chunk's place on the device clock (start_ns
//   / width) in its epoch 96     4    u32   epoch: device-clock epoch, +1 at each clock jump or
//   device restart 100    4    u32   reserved, 0 104    4*n  f32   values
// Version 1 (88-byte header, values at 88, seq = chunk index, no epoch) is still decoded:
// chunk_index = seq, epoch = 0.
//
// JSON payload (publish.format: json): one object with "version": 2 and the same field names,
// "values" an array and the timing fields under "timing".
// Producer: pipeline's publisher. Consumers: `spikeflow listen`, scripts/example_client.py.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/prediction.h"

namespace spikeflow::stages {

constexpr uint32_t kPredictionMagic = 0x52504653u;
constexpr uint16_t kPredictionVersion = 2;
constexpr size_t kPredictionHeaderBytes = 104;
constexpr size_t kPredictionHeaderBytesV1 = 88;

/// Replaces out's contents with the binary payload.
void encode_prediction(const core::Prediction& p, std::vector<uint8_t>& out);

/// Replaces out's contents with the JSON payload.
void encode_prediction_json(const core::Prediction& p, std::string& out);

/// Parses a binary payload. Returns false (and sets error) on bad magic/version/size.
bool decode_prediction(std::span<const uint8_t> payload, core::Prediction& p, std::string* error);

}  // namespace spikeflow::stages
