#include "tests/sim/contract_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <queue>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "core/unit_map.h"
#include "pipeline/decoder_inbox.h"
#include "stages/binner.h"
#include "stages/decode_stage.h"
#include "stages/native_packet.h"
#include "stages/native_packet_decoder.h"
#include "stages/publish_guard.h"
#include "stages/tokenizer.h"

namespace spikeflow::sim {
namespace {

constexpr int64_t kMs = core::kNsPerMs;
constexpr int64_t kUs = 1'000;

/// A cheap deterministic recurrent decoder: a leaky integrator of the tokens' unit directions.
/// It can be told to emit a non-finite value or to throw every Nth step (repair paths).
class SimDecoder : public models::StreamingDecoder {
 public:
  SimDecoder(std::vector<core::UnitKey> units, int64_t width_ns)
      : units_(std::move(units)), width_ns_(width_ns) {}
  int poison_every = 0;
  int throw_every = 0;

  void reset() override { state_[0] = state_[1] = 0; }
  void step(const core::TokenChunk& c, std::span<float> out) override { advance(c, out); }
  void step_many(std::span<const core::TokenChunk* const> cs, std::span<float> out) override {
    for (size_t i = 0; i < cs.size(); ++i) advance(*cs[i], out.subspan(2 * i, 2));
  }
  int output_dim() const override { return 2; }
  const std::vector<core::UnitKey>& units() const override { return units_; }
  int64_t chunk_width_ns() const override { return width_ns_; }
  std::string describe() const override { return "sim"; }

 private:
  void advance(const core::TokenChunk& c, std::span<float> out) {
    ++calls_;
    if (throw_every > 0 && calls_ % static_cast<uint64_t>(throw_every) == 0)
      throw std::runtime_error("sim decoder");
    double x = 0, y = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      x += std::cos(c.unit[i] * 0.7 + c.offset_s[i]);
      y += std::sin(c.unit[i] * 0.7 + c.offset_s[i]);
    }
    state_[0] = 0.9 * state_[0] + 0.1 * x;
    state_[1] = 0.9 * state_[1] + 0.1 * y;
    out[0] = static_cast<float>(state_[0]);
    out[1] = static_cast<float>(state_[1]);
    if (poison_every > 0 && calls_ % static_cast<uint64_t>(poison_every) == 0) out[0] = NAN;
  }
  std::vector<core::UnitKey> units_;
  int64_t width_ns_;
  double state_[2] = {0, 0};
  uint64_t calls_ = 0;
};

enum class Fault {
  kNone,
  kLoss,
  kDuplicate,
  kJitter,
  kBurst,
  kSilence,
  kHostStall,
  kConsumerStall,
  kJumpBack,
  kJumpForward,
  kDeviceRestart,
  kSenderRestart,
  kPoison,
  kCount
};
constexpr const char* kFaultNames[] = {
    "none",           "loss",           "duplicate",      "jitter",    "burst",
    "silence",        "host_stall",     "consumer_stall", "jump_back", "jump_forward",
    "device_restart", "sender_restart", "poison"};

struct Datagram {
  int64_t arrival = 0;
  uint64_t order = 0;  ///< tie-break: FIFO among equal arrivals
  uint64_t id = 0;     ///< unique per datagram sent (copies share it)
  std::vector<uint8_t> bytes;
};
struct Later {
  bool operator()(const Datagram& a, const Datagram& b) const {
    return a.arrival != b.arrival ? a.arrival > b.arrival : a.order > b.order;
  }
};

struct Stream {
  uint32_t id = 0;
  uint64_t sequence = 0;
  int64_t next_send = 0;
  int64_t last_device = 0;
  int units = 0;
};

class World {
 public:
  explicit World(const SimOptions& o) : o_(o), rng_(o.seed) { configure(); }
  SimReport run();

 private:
  // ---- setup
  void configure();
  // ---- the device and the network
  int64_t device_now() const {
    return dev_base_ + (now_ - host_base_) + (now_ - host_base_) / 1'000'000 * drift_ppm_;
  }
  void rebase_device(int64_t new_device_now);
  void send_packet(Stream& s);
  void put_on_network(std::vector<uint8_t> bytes);
  void next_segment();
  // ---- the host: ingest, ticker, decoder
  void deliver(const Datagram& d);
  void tick();
  void on_closed();
  void start_decode();
  void finish_decode();
  // ---- invariants
  void check_step();
  void check_published(const core::Prediction& p);
  void fail(const std::string& what);
  bool host_stalled() const { return now_ < host_stall_until_; }
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int64_t uniform_ns(int64_t a, int64_t b) {
    return std::uniform_int_distribution<int64_t>(a, b)(rng_);
  }
  bool chance(double p) { return uniform(0, 1) < p; }

  SimOptions o_;
  std::mt19937_64 rng_;
  SimReport r_;

  // configuration drawn from the seed
  int64_t width_ = 50 * kMs;
  int64_t tick_ = kMs;
  int64_t interval_ = kMs;
  double rate_hz_ = 20;
  int max_backlog_ = 16;
  int max_batch_ = 64;
  int64_t decode_ns_ = 20 * kUs;
  stages::BinnerOptions binner_options_;

  // the world
  int64_t now_ = 1'000'000 * kMs;
  int64_t dev_base_ = 0, host_base_ = 0, drift_ppm_ = 0;
  std::vector<Stream> streams_;
  std::priority_queue<Datagram, std::vector<Datagram>, Later> network_;
  uint64_t next_order_ = 0, next_id_ = 0;
  Fault fault_ = Fault::kNone;
  int64_t segment_end_ = 0;
  int64_t host_stall_until_ = 0;
  int64_t consumer_stall_ns_ = 0;  ///< added to the next decode call
  int64_t consumer_stall_until_ = 0;
  int64_t unstalled_since_ = 0;  ///< last time a host or consumer stall ended

  // the stages under test
  std::unique_ptr<stages::NativePacketDecoder> ingest_;
  std::unique_ptr<stages::Binner> binner_;
  std::unique_ptr<stages::Tokenizer> tokenizer_;
  std::unique_ptr<stages::DecodeStage> decode_;
  SimDecoder* decoder_ = nullptr;
  stages::PublishGuard guard_;
  std::vector<core::RawChunk> closed_;
  std::unique_ptr<pipeline::DecoderInbox> inbox_;
  std::deque<core::TokenChunk> edge_;  ///< tokenizer -> decoder edge (the node's input buffer)
  core::TokenChunk arrived_;           ///< the chunk arrive() may decode in place
  std::span<const core::TokenChunk> batch_;  ///< being decoded (busy_until_ >= 0)
  std::vector<core::Prediction> predictions_;
  int64_t busy_until_ = -1;

  // bookkeeping for the invariants
  struct Copies {
    int outstanding = 0;
    int accepted = 0;
  };
  std::unordered_map<uint64_t, Copies> datagrams_;
  uint64_t events_accepted_ = 0;  ///< events in batches handed to the binner
  uint64_t events_closed_ = 0;    ///< events in chunks the binner closed
  uint64_t chunks_closed_ = 0;
  uint64_t tokens_shed_ = 0;
  uint64_t tokens_published_ = 0;
  int64_t expected_wire_seq_ = 0;
  bool published_any_ = false;
  uint32_t last_epoch_ = 0;
  int64_t last_chunk_ = 0;
  int64_t last_publish_ = 0;
  int64_t silence_bound_ = 0;
  uint32_t last_flags_ = 0;
};

void World::configure() {
  width_ = chance(0.3) ? 20 * kMs : 50 * kMs;
  interval_ = chance(0.5) ? kMs : 5 * kMs;
  rate_hz_ = uniform(2, 40);
  max_backlog_ = static_cast<int>(uniform_ns(4, 64));
  max_batch_ = static_cast<int>(uniform_ns(8, 64));
  drift_ppm_ = uniform_ns(-100, 100);
  binner_options_.width_ns = width_;
  binner_options_.lateness_ns = 2 * kMs;
  binner_options_.deadline_grace_ns = 10 * kMs;
  binner_options_.max_grace_ns = 25 * kMs;
  binner_options_.max_future_ns = 1'000 * kMs;
  binner_options_.resync_after_batches = 3;
  binner_options_.no_source_timeout_ns = 250 * kMs;
  const int n_streams = static_cast<int>(uniform_ns(1, 3));
  std::vector<core::UnitKey> units;
  for (int s = 0; s < n_streams; ++s) {
    Stream st;
    st.id = static_cast<uint32_t>(100 + s);
    st.units = static_cast<int>(uniform_ns(4, 48));
    st.next_send = now_ + uniform_ns(0, interval_);
    for (int u = 0; u < st.units; ++u) units.push_back({static_cast<uint32_t>(s * 1000 + u), 0});
    streams_.push_back(st);
  }
  host_base_ = now_;
  dev_base_ = uniform_ns(0, 3'600'000) * kMs;
  for (auto& s : streams_) s.last_device = device_now();
  ingest_ = std::make_unique<stages::NativePacketDecoder>();
  binner_ = std::make_unique<stages::Binner>(binner_options_);
  tokenizer_ = std::make_unique<stages::Tokenizer>(core::UnitMap(units));
  auto dec = std::make_unique<SimDecoder>(units, width_);
  decoder_ = dec.get();
  static int64_t* clock_now = nullptr;
  clock_now = &now_;
  decode_ = std::make_unique<stages::DecodeStage>(
      std::move(dec), +[]() -> int64_t { return *clock_now; });
  inbox_ = std::make_unique<pipeline::DecoderInbox>(static_cast<uint64_t>(max_backlog_),
                                                    static_cast<size_t>(max_batch_));
  // An undetected step back (smaller than clock_jump) can push the deadline schedule back by as
  // much.
  silence_bound_ = 2 * width_ + binner_options_.lateness_ns + binner_options_.max_grace_ns + tick_ +
                   binner_options_.clock_jump_ns + 2 * kMs;
  segment_end_ = now_;
}

void World::rebase_device(int64_t new_device_now) {
  dev_base_ = new_device_now;
  host_base_ = now_;
  for (auto& s : streams_) s.last_device = new_device_now;
}

void World::next_segment() {
  // Back to normal service, then maybe a new fault for a random stretch.
  decoder_->poison_every = decoder_->throw_every = 0;
  fault_ = chance(0.35)
               ? Fault::kNone
               : static_cast<Fault>(uniform_ns(1, static_cast<int64_t>(Fault::kCount) - 1));
  const int64_t length = uniform_ns(200, 3'000) * kMs;
  segment_end_ = now_ + length;
  if (fault_ != Fault::kNone) ++r_.faults;
  if (o_.verbose)
    fmt::print("t={:.3f}s fault {} for {} ms\n", (now_ - 1'000'000 * kMs) * 1e-9,
               kFaultNames[static_cast<int>(fault_)], length / kMs);
  switch (fault_) {
    case Fault::kHostStall:
      host_stall_until_ = now_ + uniform_ns(5, 3'000) * kMs;
      break;
    case Fault::kConsumerStall:
      consumer_stall_ns_ = uniform_ns(5, 3'000) * kMs;
      break;
    case Fault::kJumpBack:  // small steps (treated as reordering) and real jumps
      rebase_device(std::max<int64_t>(
          0, device_now() - (chance(0.3) ? uniform_ns(5, 190) : uniform_ns(300, 100'000)) * kMs));
      break;
    case Fault::kJumpForward:
      rebase_device(device_now() +
                    (chance(0.3) ? uniform_ns(5, 190) : uniform_ns(300, 200'000)) * kMs);
      break;
    case Fault::kDeviceRestart:
      rebase_device(uniform_ns(0, 50) * kMs);
      for (auto& s : streams_) s.sequence = 0;
      break;
    case Fault::kSenderRestart:
      streams_[static_cast<size_t>(uniform_ns(0, static_cast<int64_t>(streams_.size()) - 1))]
          .sequence = 0;
      break;
    case Fault::kPoison:
      decoder_->poison_every = static_cast<int>(uniform_ns(2, 50));
      decoder_->throw_every =
          static_cast<int>(uniform_ns(0, 1)) * static_cast<int>(uniform_ns(3, 70));
      break;
    default:
      break;
  }
}

void World::send_packet(Stream& s) {
  const int64_t dev = device_now();
  const double burst = fault_ == Fault::kBurst ? 100.0 : 1.0;
  const double span_s = std::max<int64_t>(0, dev - s.last_device) * 1e-9;
  std::poisson_distribution<int> count(std::max(0.0, s.units * rate_hz_ * burst * span_s));
  const int n = std::min<int>(count(rng_), static_cast<int>(stages::kMaxEventsPerDatagram));
  std::vector<core::SpikeEvent> events(static_cast<size_t>(n));
  for (auto& e : events) {
    e.t_ns = dev > s.last_device ? uniform_ns(s.last_device, dev) : dev;
    const bool unknown = chance(0.02);
    e.channel =
        static_cast<uint32_t>((s.id - 100) * 1000 + (unknown ? 999 : uniform_ns(0, s.units - 1)));
    e.unit = 0;
  }
  std::sort(events.begin(), events.end(), [](auto& a, auto& b) { return a.t_ns < b.t_ns; });
  s.last_device = dev;
  stages::NativePacketHeader h;
  h.stream_id = s.id;
  h.sequence = s.sequence++;
  h.device_time_ns = dev;
  h.event_count = static_cast<uint32_t>(n);
  std::vector<uint8_t> bytes;
  stages::encode_native_packet(h, events, bytes);
  r_.events_sent += static_cast<uint64_t>(n);
  put_on_network(std::move(bytes));
}

void World::put_on_network(std::vector<uint8_t> bytes) {
  ++r_.datagrams;
  if (fault_ == Fault::kLoss && chance(0.3)) return;
  const uint64_t id = next_id_++;
  const int copies = (fault_ == Fault::kDuplicate && chance(0.3)) ? 2 : 1;
  for (int c = 0; c < copies; ++c) {
    Datagram d;
    int64_t delay = 30 * kUs + uniform_ns(0, 20 * kUs);
    if (fault_ == Fault::kJitter) delay += uniform_ns(0, 20 * kMs);
    d.arrival = now_ + delay;
    d.order = next_order_++;
    d.id = id;
    d.bytes = bytes;
    network_.push(std::move(d));
  }
  datagrams_[id].outstanding = copies;
}

void World::deliver(const Datagram& d) {
  core::EventBatch batch;
  const bool ok = ingest_->decode(d.bytes, now_, batch);  // stamped when read: after a stall, late
  if (o_.verbose && ok && binner_->started()) {
    const int64_t ahead = batch.device_time_ns / width_ - device_now() / width_;
    if (ahead > 2) {
      fmt::print(
          "  t={:.3f}s datagram {} device chunk {} is {} chunks ahead of the device now (epoch {}, "
          "next_seq {})\n",
          (now_ - 1'000'000 * kMs) * 1e-9, d.id, batch.device_time_ns / width_, ahead,
          binner_->epoch(), binner_->next_seq());
    }
  }
  auto& c = datagrams_[d.id];
  --c.outstanding;
  if (ok) {
    ++c.accepted;
    events_accepted_ += batch.events.size();
    closed_.clear();
    binner_->push(batch, closed_);
    on_closed();
  }
  if (c.outstanding == 0) {
    if (c.accepted != 1) {
      fail(fmt::format(
          "datagram {} accepted {} times (every datagram that arrives must be taken exactly once)",
          d.id, c.accepted));
    }
    datagrams_.erase(d.id);
  }
}

void World::tick() {
  closed_.clear();
  binner_->tick(now_, closed_);
  on_closed();
}

void World::on_closed() {
  for (const auto& raw : closed_) {
    ++chunks_closed_;
    events_closed_ += raw.events.size();
    core::TokenChunk t;
    tokenizer_->tokenize(raw, t);
    const size_t tokens = t.size();
    if (inbox_->admit(t)) {  // the decoder's backlog bound, as in the pipeline
      tokens_shed_ += tokens;
      ++r_.shed_chunks;
    }
    edge_.push_back(std::move(t));
  }
  closed_.clear();
}

void World::start_decode() {
  // The decoder node takes chunks off its input edge one at a time until the inbox hands it a
  // complete batch (every admitted chunk, or max_batch of them).
  while (batch_.empty() && !edge_.empty()) {
    arrived_ = std::move(edge_.front());
    edge_.pop_front();
    batch_ = inbox_->arrive(arrived_);
  }
  if (batch_.empty()) return;
  busy_until_ = now_ + decode_ns_ * static_cast<int64_t>(batch_.size()) + consumer_stall_ns_;
  if (consumer_stall_ns_ > 0) consumer_stall_until_ = busy_until_;
  consumer_stall_ns_ = 0;
}

void World::finish_decode() {
  predictions_.clear();
  decode_->decode(batch_, predictions_);
  busy_until_ = -1;
  for (auto& p : predictions_) {
    if (!guard_.admit(p)) {
      fail(
          fmt::format("publish guard refused epoch {} chunk {}: a chunk would have been published "
                      "twice or out of order",
                      p.epoch, p.chunk_index));
      return;
    }
    check_published(p);
  }
  decode_->prepare_next();
  batch_ = inbox_->finish();
  if (!batch_.empty()) busy_until_ = now_ + decode_ns_ * static_cast<int64_t>(batch_.size());
}

void World::check_published(const core::Prediction& p) {
  ++r_.predictions;
  tokens_published_ += p.n_tokens;
  if (core::has_flag(p.flags, core::ChunkFlag::kCatchUp)) ++r_.catch_up_chunks;
  if (core::has_flag(p.flags, core::ChunkFlag::kOutputRepaired)) ++r_.repaired;
  if (core::has_flag(p.flags, core::ChunkFlag::kNoSource)) ++r_.no_source_chunks;
  if (p.seq != expected_wire_seq_++)
    fail(fmt::format("wire seq {} where {} was due", p.seq, expected_wire_seq_ - 1));
  const bool new_epoch = core::has_flag(p.flags, core::ChunkFlag::kNewEpoch);
  if (published_any_) {
    if (p.epoch == last_epoch_) {
      if (p.chunk_index != last_chunk_ + 1)
        fail(fmt::format("epoch {}: chunk {} after chunk {}", p.epoch, p.chunk_index, last_chunk_));
      if (new_epoch)
        fail(fmt::format("epoch {} chunk {}: new_epoch flag inside an epoch", p.epoch,
                         p.chunk_index));
    } else {
      if (p.epoch != last_epoch_ + 1)
        fail(fmt::format("epoch {} after epoch {}", p.epoch, last_epoch_));
      if (!new_epoch)
        fail(fmt::format("epoch {} chunk {}: first chunk of an epoch without new_epoch", p.epoch,
                         p.chunk_index));
      ++r_.epochs;
    }
  } else if (new_epoch && p.epoch == 0) {
    fail("the first chunk of the run carries new_epoch");
  }
  for (int d = 0; d < p.output_dim; ++d) {
    if (!std::isfinite(p.values[static_cast<size_t>(d)]))
      fail(fmt::format("non-finite value published, chunk {}", p.chunk_index));
  }
  if (std::getenv("SIM_TRACE")) {
    fmt::print(
        "  pub t={:.4f} epoch {} chunk {} flags {:#x} device_chunk {} deadline_in {:.1f}ms grace "
        "{:.1f}\n",
        (now_ - 1'000'000 * kMs) * 1e-9, p.epoch, p.chunk_index, p.flags, device_now() / width_,
        (binner_->next_deadline_host_ns() - now_) / 1e6, binner_->current_grace_ns() / 1e6);
  }
  published_any_ = true;
  last_epoch_ = p.epoch;
  last_chunk_ = p.chunk_index;
  last_publish_ = now_;
  last_flags_ = p.flags;
}

void World::check_step() {
  const auto& b = binner_->stats();
  if (b.events_in != events_accepted_)
    fail("binner events_in differs from the events ingest handed it");
  if (b.events_in != b.events_binned + b.late_events + b.future_events + b.stray_events +
                         b.stale_events + binner_->held_events()) {
    fail(
        fmt::format("binner conservation: in {} != binned {} + late {} + future {} + stray {} + "
                    "stale {} + held {}",
                    b.events_in, b.events_binned, b.late_events, b.future_events, b.stray_events,
                    b.stale_events, binner_->held_events()));
  }
  const auto& t = tokenizer_->stats();
  if (events_closed_ != t.tokens + t.unknown_unit_events) fail("tokenizer conservation");
  uint64_t waiting = 0;
  for (const auto& c : edge_) waiting += c.size();
  for (const auto& c : batch_) waiting += c.size();
  if (t.tokens != tokens_published_ + tokens_shed_ + waiting) {
    fail(fmt::format("decoder conservation: tokens {} != published {} + shed {} + waiting {}",
                     t.tokens, tokens_published_, tokens_shed_, waiting));
  }
  if (chunks_closed_ != r_.predictions + inbox_->waiting()) fail("a closed chunk went missing");
  if (inbox_->waiting() != edge_.size() + batch_.size())
    fail("the decoder holds chunks it neither decodes nor returns");
  // Chunks keep their place while waiting, but their tokens are bounded by the inbox's capacity.
  uint64_t tokened = 0;
  for (const auto& c : edge_) tokened += c.empty() ? 0 : 1;
  if (tokened > static_cast<uint64_t>(max_backlog_))
    fail("more chunks with tokens waiting than decoder.max_backlog");
  if (binner_->held_events() >
      static_cast<uint64_t>(binner_options_.resync_after_batches) * stages::kMaxEventsPerDatagram) {
    fail("held suspects unbounded");
  }
  // No silence: once anchored, and unless the host or the consumer was stalled lately, the
  // deadline schedule keeps predictions coming.
  const bool excused = host_stalled() || busy_until_ >= 0 || now_ < consumer_stall_until_ ||
                       now_ - unstalled_since_ < silence_bound_ + 200 * kMs || !published_any_;
  if (binner_->started() && !excused && now_ - last_publish_ > silence_bound_) {
    fail(fmt::format(
        "silence: no prediction for {:.1f} ms (bound {:.1f} ms); next deadline in {:.1f} ms, grace "
        "{:.1f} ms, epoch {} chunk {}, last flags {:#x}, edge {}; offset estimate - true offset "
        "{:.1f} ms, watermark chunk - device chunk {}",
        (now_ - last_publish_) / 1e6, silence_bound_ / 1e6,
        (binner_->next_deadline_host_ns() - now_) / 1e6, binner_->current_grace_ns() / 1e6,
        binner_->epoch(), binner_->next_seq(), last_flags_, edge_.size(),
        (binner_->offset_estimate_ns() - (now_ - device_now())) / 1e6,
        binner_->next_seq() - device_now() / width_));
  }
}

void World::fail(const std::string& what) {
  if (!r_.ok) return;
  r_.ok = false;
  r_.failure =
      fmt::format("seed {} step {} t={:.6f}s fault={}: {}", o_.seed, r_.steps,
                  (now_ - 1'000'000 * kMs) * 1e-9, kFaultNames[static_cast<int>(fault_)], what);
}

SimReport World::run() {
  int64_t next_tick = now_ + tick_;
  while (r_.ok && r_.predictions < o_.chunks) {
    // The next thing that happens, in virtual time. Sends go on during a host stall (the device
    // does not stop); everything on the host waits for the stall to end.
    int64_t t = segment_end_;
    for (const auto& s : streams_) t = std::min(t, s.next_send);
    const int64_t host_gate = host_stalled() ? host_stall_until_ : INT64_MIN;
    if (!network_.empty()) t = std::min(t, std::max(network_.top().arrival, host_gate));
    t = std::min(t, std::max(next_tick, host_gate));
    if (busy_until_ >= 0) t = std::min(t, std::max(busy_until_, host_gate));
    const bool was_stalled = host_stalled();
    now_ = std::max(now_, t);
    if (was_stalled && !host_stalled()) unstalled_since_ = now_;
    if (consumer_stall_until_ > 0 && now_ >= consumer_stall_until_) {
      unstalled_since_ = std::max(unstalled_since_, consumer_stall_until_);
      consumer_stall_until_ = 0;
    }
    ++r_.steps;
    if (now_ >= segment_end_) {
      next_segment();
    } else if (!host_stalled() && busy_until_ >= 0 && now_ >= busy_until_) {
      finish_decode();
    } else if (!host_stalled() && now_ >= next_tick &&
               !(network_.size() && network_.top().arrival <= now_ && chance(0.5))) {
      tick();
      next_tick += tick_;
      if (next_tick <= now_) next_tick = now_ + tick_;  // after a stall the ticker does not burst
    } else if (!host_stalled() && !network_.empty() && network_.top().arrival <= now_) {
      Datagram d = network_.top();
      network_.pop();
      deliver(d);
    } else {
      for (auto& s : streams_) {
        if (s.next_send <= now_) {
          if (fault_ != Fault::kSilence) send_packet(s);
          s.next_send += interval_;
          break;
        }
      }
    }
    if (!host_stalled() && busy_until_ < 0 && !edge_.empty()) start_decode();
    check_step();
  }
  r_.late_events = binner_->stats().late_events;
  r_.virtual_s = (now_ - 1'000'000 * kMs) * 1e-9;
  return r_;
}

}  // namespace

std::string SimReport::summary() const {
  return fmt::format(
      "{} predictions, {} epoch changes, {} faults, {:.0f} s virtual, {} steps, {} datagrams, {} "
      "events, {} late, "
      "{} catch-up, {} shed, {} repaired, {} no_source{}",
      predictions, epochs, faults, virtual_s, steps, datagrams, events_sent, late_events,
      catch_up_chunks, shed_chunks, repaired, no_source_chunks, ok ? "" : "\nFAILED: " + failure);
}

SimReport run_simulation(const SimOptions& options) { return World(options).run(); }

}  // namespace spikeflow::sim
