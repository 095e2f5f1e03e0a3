// Intan RHX "spike" TCP data output (the RHX software's TCP spike port), decoded as a byte
// stream. Source: Intan-Technologies/Intan-RHX, Engine/Threads/tcpdataoutputthread.cpp (the
// writer: TCPSpikeMagicNumber, native name, uint32 timestamp, uint8 spike id per spike) and
// Engine/Processing/waveformfifo.h (the SpikeId* constants); Intan's example clients read the same
// 14-byte chunk. All fields little-endian, no padding, records back to back:
//
//   offset size type    field
//   0      4    u32     magic = 0x3AE2710F
//   4      5    char[5] native channel name, "P-NNN": port letter, '-', three decimal digits
//                       (e.g. "A-000", "D-031"); not NUL-terminated
//   9      4    u32     timestamp: sample index at the amplifier sample rate (wraps at 2^32)
//   13     1    u8      spike id: bit flags 0x01/0x02/0x04/0x08 = sorted spike type 1..4,
//                       0x40 = unclassified spike, 0x80 = likely artifact (0x00 = no spike,
//                       never sent)
//
// Mapping to SpikeEvent (documented, reversible):
//   channel = port * 128 + NNN, port = letter - 'A' (A..H -> 0..7), NNN in 0..127, so channels
//            0..1023 (RHX ports carry at most 128 amplifier channels); intan_channel_name inverts
//            it. Any other name is counted (FormatPacketDrop::kBadChannelName) and dropped.
//   unit   = 0 for 0x40 (unclassified), 1..4 for a single type bit 0x01..0x08; ids with the
//            0x80 artifact bit are dropped as noise (FormatEventDrop::kNoise), any other id is
//            dropped as kUnknownUnit. With IntanOptions::raw_spike_id the id byte is the unit as
//            is.
//   t_ns   = unwrapped timestamp * 1e9 / sample_rate_hz, rounded down (exact integer math on
//            the rate as a fraction p/q, q <= 1000: RHX's "3333 Hz" mode is 10000/3 Hz,
//            Engine/Processing/systemstate.cpp sampleRate->addItem("3333", ..., 10000.0 / 3.0)).
//            A count whose ns would overflow int64 (~292 years) drops the record
//            (PacketDrop::kBadPacketTime; not counted in packets_accepted).
//
// Write size: RHX sends its spike records once per TCPNumberDataBlocksPerWrite data blocks of
// 128 frames (Engine/Processing/systemstate.cpp tcpNumDataBlocksWrite, default 10;
// Engine/Processing/systemstate.h FramesPerBlock = 128; Engine/Threads/tcpdataoutputthread.cpp
// waits for FramesPerBlock * tcpNumDataBlocksWrite frames before each write), so the oldest spike
// of a write arrives intan_write_period_ns (42.7 ms at 30 kHz) after its time; the pipeline's
// default chunking grace for this format covers that (pipeline/config_keys.cpp).
//
// Producer: Intan RHX (tests: encode_intan_spike). Consumer: pipeline TCP ingest (one decoder per
// connection), owned and called by its ingest thread; stats() readable by that thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/event_batch.h"
#include "stages/ingest_stats.h"
#include "stages/wrapping_clock.h"

namespace spikeflow::stages {

constexpr uint32_t kIntanSpikeMagic = 0x3AE2710Fu;
constexpr size_t kIntanSpikeRecordBytes = 14;
constexpr size_t kIntanNameBytes = 5;
constexpr uint32_t kIntanChannelsPerPort = 128;
constexpr uint32_t kIntanPorts = 8;  ///< A..H
constexpr uint8_t kIntanSpikeIdUnclassified = 0x40;
constexpr uint8_t kIntanSpikeIdArtifact = 0x80;
constexpr int kIntanFramesPerBlock = 128;          ///< RHX FramesPerBlock
constexpr int kIntanDefaultBlocksPerWrite = 10;    ///< RHX TCPNumberDataBlocksPerWrite default
constexpr uint16_t kIntanDefaultSpikePort = 5002;  ///< RHX tcpSpikeDataCommunicator default port

/// Time between RHX spike-port writes: blocks_per_write * 128 frames at sample_rate_hz, in ns.
int64_t intan_write_period_ns(int blocks_per_write, double sample_rate_hz);

/// Largest numerator intan_rate_fraction returns: INT64_MAX / 1e9, so the exact tick -> ns
/// conversion cannot overflow.
constexpr int64_t kIntanMaxRateNumerator = std::numeric_limits<int64_t>::max() / 1'000'000'000;

/// sample_rate_hz as an exact fraction {p, q} with q <= 1000 (10000/3 -> {10000, 3}), or {0, 0}
/// when no such fraction lies within 1e-12 relative of it (write 3333.3333333333 for 10000/3) or
/// its numerator p exceeds kIntanMaxRateNumerator.
std::pair<int64_t, int64_t> intan_rate_fraction(double sample_rate_hz);

/// "P-NNN" -> channel (port * 128 + NNN), or nullopt when the name is not of that form.
std::optional<uint32_t> intan_channel_from_name(std::span<const char, kIntanNameBytes> name);
/// channel -> "P-NNN" (channel < 1024).
std::array<char, kIntanNameBytes> intan_channel_name(uint32_t channel);

/// Appends one 14-byte spike record. name must be 5 characters (shorter is padded with NULs).
void encode_intan_spike(std::string_view name, uint32_t timestamp, uint8_t spike_id,
                        std::vector<uint8_t>& out);

struct IntanOptions {
  /// Amplifier sample rate the timestamps count in, Hz; required, [1, 1e9], e.g. 30000 or
  /// 3333.333... (10000/3). RHX reports it on its command port ("get sampleratehertz").
  double sample_rate_hz = 0;
  /// Use the spike id byte as the unit unchanged instead of the mapping above.
  bool raw_spike_id = false;

  /// Every problem with the options, empty when valid.
  std::vector<std::string> validate() const;
};

class IntanSpikeStreamDecoder {
 public:
  /// Throws std::invalid_argument listing every problem in options.
  explicit IntanSpikeStreamDecoder(const IntanOptions& options);

  /// Consumes the bytes of one TCP read (records may be split anywhere across reads; up to 13
  /// bytes are carried over to the next call). Clears out, sets arrival_host_ns, appends one event
  /// per complete record kept, and sets device_time_ns to the largest time of any well-formed
  /// record completed in this call (-1 when none). Where a magic is due but absent, bytes are
  /// skipped until the next magic (FormatPacketDrop::kLostSync once per episode, every byte in
  /// IngestStats::resync_bytes). Never throws; no allocation once out.events has capacity for
  /// bytes.size() / 14 + 1 events.
  void feed(std::span<const uint8_t> bytes, int64_t arrival_host_ns, core::EventBatch& out);

  /// A new connection: drops the carried partial record and the clock unwrapping state (RHX
  /// restarts its timestamps with a new run). Counters are kept.
  void reset();

  /// packets_accepted counts well-formed records (whether or not their unit was kept).
  const IngestStats& stats() const { return stats_; }
  const IntanOptions& options() const { return options_; }

 private:
  /// Consumes whole records and unsynchronised bytes from p[0, n); returns how many bytes it
  /// consumed. What is left (< 14 bytes) starts with a possible magic prefix.
  size_t consume(const uint8_t* p, size_t n, core::EventBatch& out);
  void decode_record(const uint8_t* p, core::EventBatch& out);
  void skip_byte();

  IntanOptions options_;
  IngestStats stats_;
  WrappingClock32 clock_;
  int64_t rate_num_ = 1, rate_den_ = 1;  ///< sample_rate_hz = rate_num_ / rate_den_
  std::array<uint8_t, kIntanSpikeRecordBytes - 1> carry_{};
  size_t carry_len_ = 0;
  bool in_sync_ = true;  ///< false while skipping bytes to find the next magic
};

}  // namespace spikeflow::stages
