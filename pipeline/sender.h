// send_events: plays a time-ordered spike stream to a live pipeline in any supported ingest
// format, paced against the host clock (real time × speed) or as fast as possible:
//   native over udp (stages/native_packet.h) or tcp (length-prefixed frames),
//   blackrock over udp (cbPKT spike packets + a system heartbeat per packet interval),
//   intan over tcp (14-byte spike records; the stream has no heartbeat).
// Every packet interval carries the played device clock (native: device_time_ns; Blackrock: a
// heartbeat packet) so the receiver's watermark moves even without spikes, as acquisition
// systems do. The pacing is pipeline/pacer.h, which in-process session replay shares; the packet
// clock runs until more than one interval past the end. Used by `spikeflow send`, `spikeflow
// profile` (as a child process) and tests. Blocking; runs on the caller's thread.
#pragma once

#include <atomic>
#include <optional>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/spike_event.h"
#include "pipeline/config_enums.h"
#include "stages/blackrock_packet_decoder.h"

namespace spikeflow::pipeline {

struct SendOptions {
  IngestFormat format = IngestFormat::kNative;
  Transport transport = Transport::kUdp;  ///< udp | tcp (format_transport_problem); not none
  /// 3.11 (30 kHz ticks) | 4.0 | 4.1 (ns)
  stages::BlackrockProtocol blackrock_protocol = stages::BlackrockOptions{}.protocol;
  /// Intan sample clock (10000/3 accepted) / Blackrock 3.11 ticks (whole Hz), Hz.
  double sample_rate_hz = static_cast<double>(stages::BlackrockOptions{}.sample_rate_hz);
  std::string address = "127.0.0.1";
  int port = 47000;
  double speed = 1.0;  ///< ×real time; 0 = as fast as possible
  int64_t packet_interval_ns = 1'000'000;
  int max_events_per_packet = 64;  ///< keeps datagrams under a 1500-byte MTU
  uint32_t stream_id = 1;
  int64_t start_device_ns = -1;  ///< device clock at the start; -1 = first event's time
  int64_t end_device_ns = -1;    ///< keep sending heartbeats until here; -1 = last event
  /// When set, one (device_time_ns, host send ns) pair per packet is appended here, so a
  /// profiler can measure end to end from the moment the chunk-closing packet left.
  std::vector<std::pair<int64_t, int64_t>>* send_log = nullptr;
  /// Fault injection (`spikeflow send --clock-jump-*|--restart-at-s`, `spikeflow soak`, tests):
  /// see DeviceClockFaults. Times after start are of the played clock (= host time at speed 1).
  int64_t device_offset_ns = 0;   ///< added to every device time sent
  int64_t clock_jump_at_ns = -1;  ///< device clock += clock_jump_ns from here on; -1 = never
  int64_t clock_jump_ns = 0;      ///< may be negative (a jump back)
  int64_t restart_at_ns =
      -1;  ///< device restart: clock from 0 and sequence numbers from 0; -1 = never
};

/// The device clock a sender with injected faults reports, for a played clock t (ns) and the
/// start of the play s: t + device_offset, plus clock_jump from s + clock_jump_at on; from
/// s + restart_at on, t - (s + restart_at) (the device restarted at 0), and the packet sequence
/// numbers restart at 0 there. A plain value; SendOptions without faults maps t to t.
struct DeviceClockFaults {
  int64_t start_ns = 0;
  int64_t offset_ns = 0;
  int64_t jump_at_ns = -1, jump_ns = 0;
  int64_t restart_at_ns = -1;

  static DeviceClockFaults from(const SendOptions& o, int64_t start_ns) {
    return {start_ns, o.device_offset_ns, o.clock_jump_at_ns, o.clock_jump_ns, o.restart_at_ns};
  }
  bool restarted(int64_t played_ns) const {
    return restart_at_ns >= 0 && played_ns - start_ns >= restart_at_ns;
  }
  int64_t device_ns(int64_t played_ns) const {
    if (restarted(played_ns)) return played_ns - start_ns - restart_at_ns;
    int64_t t = played_ns + offset_ns;
    if (jump_at_ns >= 0 && played_ns - start_ns >= jump_at_ns) t += jump_ns;
    return t;
  }
};

/// K-fold spike rate (`spikeflow send --rate-multiplier`): every event k times, copy 0 at its own
/// time and the others jittered uniformly within ±jitter_ns (seeded; kept inside the events'
/// time span), sorted by time. k = 1 returns the events unchanged.
std::vector<core::SpikeEvent> multiply_rate(std::span<const core::SpikeEvent> events, int k,
                                            int64_t jitter_ns = 1'000'000, uint64_t seed = 1);

struct SendStats {
  uint64_t packets = 0;
  uint64_t events = 0;
  uint64_t send_errors = 0;
  double seconds = 0.0;
};

/// Sends events (sorted by t_ns). Device times go through DeviceClockFaults: a sent time that
/// would be negative is a std::runtime_error before anything is sent (give device_offset_ns).
/// Returns early when stop becomes true. Throws std::runtime_error on a bad address, an
/// unopenable socket, a refused TCP connection, an unsupported format/transport pair
/// (format_transport_problem; transport none), or a channel the format cannot carry
/// (format_channel_problem), before sending anything.
/// Blackrock channels: channel = instrument * 65536 + chid (stages::blackrock_channel_key), chid
/// 1..32767; 3.11 has no instrument byte (channel = chid). Blackrock chids are 1-based, so a
/// session whose channels start at 0 is refused, not renumbered (the decoder's unit map names
/// channels as the session does).
SendStats send_events(std::span<const core::SpikeEvent> events, const SendOptions& options,
                      const std::atomic<bool>* stop = nullptr,
                      void (*progress)(const SendStats&, int64_t device_ns) = nullptr);

/// Why channel cannot travel as format (Blackrock: chid 0 or above 0x7FFF, instrument above 255
/// or any instrument on 3.11; Intan: not a port A..H channel 0..1023), or nullopt.
std::optional<std::string> format_channel_problem(IngestFormat format,
                                                  stages::BlackrockProtocol protocol,
                                                  uint32_t channel);

/// The send log file (`spikeflow send --send-log`, read by pipeline/profile_experiment.h): the
/// pairs of SendOptions::send_log in order, each as two native-endian int64. Both throw
/// std::runtime_error naming the path when it cannot be written / opened.
void write_send_log(const std::string& path, const std::vector<std::pair<int64_t, int64_t>>& log);
std::vector<std::pair<int64_t, int64_t>> read_send_log(const std::string& path);

}  // namespace spikeflow::pipeline
