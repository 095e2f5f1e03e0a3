// BlackrockPacketDecoder: one UDP datagram from a Blackrock NSP / Gemini hub (several cbPKT
// packets back to back, layouts in stages/blackrock_packet.h) -> EventBatch of its spikes.
//
// Per packet, by chid (channel key = instrument * 65536 + chid, blackrock_channel_key):
//   1..fe_channel_count  spike packet: one SpikeEvent{t_ns = packet time, channel = key,
//                        unit = type}; units 0..5 kept, 255 (noise) dropped and counted
//                        (FormatEventDrop::kNoise), 6..254 dropped (kUnknownUnit).
//   bit 0x8000 set       system/configuration packet (heartbeat every 10 ms, protocol monitor,
//                        SYSREP, PROCREP, ...): clock only. Heartbeats are counted
//                        (IngestStats::heartbeats counts heartbeat packets).
//   anything else        continuous sample groups (chid 0, type 1..6), analog/digital/serial
//                        input and output channels: clock only, counted in packets_skipped. A
//                        packet shaped like a spike (dlen 4..68, unit 0..5 or 255) on a chid that
//                        cannot carry one (chid 0 with a type that is no sample group, or a chid
//                        above fe_channel_count) is a lost spike:
//                        FormatEventDrop::kChannelOutOfRange.
// Every well-formed packet's time advances the batch's device time (continuous data too: an NSP
// streaming only continuous data still moves the clock). A header or declared dlen running past
// the datagram's end stops decoding that datagram (FormatPacketDrop::kTruncatedPacket); the
// spikes decoded before it are kept.
//
// Times: protocol 3.11 -> 32-bit ticks at sample_rate_hz, unwrapped across 2^32 wraps
// (IngestStats::clock_wraps) and converted to ns exactly (floor). Protocol 4.x -> 64-bit ns or
// ticks, by time_units. kAuto does what CereLink does (src/cbdev/src/device_session.cpp,
// PROCREP handling): times are ns until the instrument's processor report (PROCREP, chid 0x8000
// type 0x21) names a device whose ident does not contain "gemini" (case-insensitive); from then
// on that instrument's times are ticks at the sysfreq of its last SYSREP (type 0x1X), or
// sample_rate_hz before one is seen. The NSP sends both in its configuration flood (when Central
// or a cbSDK client starts); set time_units ticks for a legacy NSP when spikeflow may start
// after that flood.
// Note: the NSP sends a spike packet once its waveform window is complete, i.e. up to
// cbMAX_PNTS samples (4.3 ms at 30 kHz; 1.6 ms at the default 48) after the spike's time, so a
// heartbeat can carry a later time than a spike that follows it; the binner's lateness_ns must
// cover the configured spike length.
//
// Owned and called by one ingest thread; stats() may be read by that thread only.
#pragma once

#include <array>
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

/// What the 4.x time field counts.
enum class BlackrockTimeUnits : uint8_t {
  kAuto,   ///< per instrument, from PROCREP / SYSREP as CereLink does (ns until told otherwise)
  kNs,     ///< nanoseconds (Gemini)
  kTicks,  ///< ticks at sample_rate_hz (legacy NSP on 4.x firmware)
};

struct BlackrockOptions {
  BlackrockProtocol protocol = BlackrockProtocol::kV4_1;
  /// Tick rate of the time field when it counts ticks (3.11 always; 4.x ticks, or auto before a
  /// SYSREP), Hz; [1, 1e9]. The NSP's system clock is 30 kHz.
  int64_t sample_rate_hz = kBlackrockDefaultSampleRateHz;
  /// 4.x only: what the 64-bit time field counts. Must be kAuto or kTicks for 3.11.
  BlackrockTimeUnits time_units = BlackrockTimeUnits::kAuto;
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

  /// packets_accepted counts datagrams with at least one well-formed packet; heartbeats counts
  /// heartbeat packets; packets_skipped counts well-formed packets without spikes (continuous,
  /// digital, ...).
  const IngestStats& stats() const { return stats_; }
  const BlackrockOptions& options() const { return options_; }

 private:
  /// Device time of a packet of instrument in ns, or -1 when it is not representable.
  int64_t packet_time_ns(uint64_t raw_time, uint8_t instrument);
  /// kAuto: learns the time units of instrument from a SYSREP / PROCREP payload.
  void observe_system_packet(uint16_t type, uint8_t instrument, const uint8_t* payload,
                             size_t bytes);

  /// Per instrument (kAuto): ticks rather than ns, and the tick rate.
  struct InstrumentClock {
    bool ticks = false;
    int64_t rate_hz = 0;
  };

  BlackrockOptions options_;
  size_t header_bytes_;
  IngestStats stats_;
  WrappingClock32 clock_;
  std::array<InstrumentClock, 256> instruments_{};
};

}  // namespace spikeflow::stages
