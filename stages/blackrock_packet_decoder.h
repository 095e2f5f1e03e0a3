// BlackrockPacketDecoder: one UDP datagram from a Blackrock NSP / Gemini hub (several cbPKT
// packets back to back, layouts in stages/blackrock_packet.h) -> EventBatch of its spikes.
//
// Per packet, by chid:
//   1..fe_channel_count  spike packet: one SpikeEvent{t_ns = packet time, channel = chid,
//                        unit = type}; units 0..5 kept, 255 (noise) dropped and counted
//                        (FormatEventDrop::kNoise), 6..254 dropped (kUnknownUnit). Its time
//                        advances the watermark even when the unit is dropped.
//   bit 0x8000 set       system/configuration packet (heartbeat every 10 ms, protocol monitor,
//                        ...): advances the watermark, no event.
//   anything else        continuous sample groups (chid 0), analog/digital/serial input and
//                        output channels: skipped, counted in IngestStats::packets_skipped.
// A header or declared dlen running past the datagram's end stops decoding that datagram
// (FormatPacketDrop::kTruncatedPacket); the spikes decoded before it are kept.
//
// Times: protocol 3.11 -> 32-bit ticks at sample_rate_hz, unwrapped across 2^32 wraps
// (IngestStats::clock_wraps) and converted to ns exactly (floor). Protocol 4.x -> 64-bit ns as
// sent (Gemini), or ticks at sample_rate_hz when time_in_ticks (legacy NSP on 4.x firmware).
// The batch's device_time_ns is the largest time of any time-bearing packet in the datagram.
// Note: the NSP sends a spike packet once its waveform window is complete, i.e. up to
// cbMAX_PNTS samples (4.3 ms at 30 kHz; 1.6 ms at the default 48) after the spike's time, so a
// heartbeat can carry a later time than a spike that follows it; the binner's lateness_ns must
// cover the configured spike length.
//
// Owned and called by one ingest thread; stats() may be read by that thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/event_batch.h"
#include "stages/blackrock_packet.h"
#include "stages/ingest_stats.h"
#include "stages/native_packet.h"
#include "stages/wrapping_clock.h"

namespace spikeflow::stages {

/// Most spikes one datagram can hold (every packet a 3.11 spike packet without waveform): the
/// capacity to reserve in EventBatch::events for an allocation-free decode.
constexpr size_t kBlackrockMaxSpikesPerDatagram =
    kMaxUdpPayload / (kBlackrockHeaderBytes311 + kBlackrockSpikeFixedBytes);

struct BlackrockOptions {
  BlackrockProtocol protocol = BlackrockProtocol::kV4_1;
  /// Tick rate of the time field when it counts ticks (3.11 always; 4.x with time_in_ticks), Hz;
  /// [1, 1e9]. The NSP's system clock is 30 kHz.
  int64_t sample_rate_hz = kBlackrockDefaultSampleRateHz;
  /// 4.x only: the 64-bit time field counts ticks at sample_rate_hz (legacy NSP running 4.x
  /// firmware) rather than nanoseconds (Gemini). Must be false for 3.11.
  bool time_in_ticks = false;
  /// Front-end channels: chids 1..this carry spike packets; [1, 0x7FFF]. The instrument-side
  /// cbNUM_FE_CHANS is 256; raise it for hubs numbering more electrodes.
  uint32_t fe_channel_count = kBlackrockDefaultFeChannels;

  /// Every problem with the options, empty when valid.
  std::vector<std::string> validate() const;
};

class BlackrockPacketDecoder {
 public:
  /// Throws std::invalid_argument listing every problem in options.
  explicit BlackrockPacketDecoder(const BlackrockOptions& options);

  /// Decodes one datagram. Clears out, sets arrival_host_ns, appends the spikes kept and sets
  /// device_time_ns to the largest packet time; returns true when at least one packet carried a
  /// usable time (a spike or system packet), false otherwise (out then holds no events and
  /// device_time_ns = -1). Malformed packets and dropped spikes are counted by reason. Never
  /// throws; no allocation once out.events has kBlackrockMaxSpikesPerDatagram capacity.
  bool decode(std::span<const uint8_t> datagram, int64_t arrival_host_ns, core::EventBatch& out);

  /// Forgets the 3.x clock unwrapping state (the instrument restarted); counters are kept.
  void reset() { clock_.reset(); }

  /// packets_accepted / heartbeats count datagrams (heartbeats: accepted without spikes);
  /// packets_skipped counts packets inside datagrams.
  const IngestStats& stats() const { return stats_; }
  const BlackrockOptions& options() const { return options_; }

 private:
  /// Device time of a packet in ns, or -1 when it is not representable.
  int64_t packet_time_ns(uint64_t raw_time);

  BlackrockOptions options_;
  size_t header_bytes_;
  IngestStats stats_;
  WrappingClock32 clock_;
};

}  // namespace spikeflow::stages
