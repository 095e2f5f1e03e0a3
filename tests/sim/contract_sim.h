// Deterministic simulation of the live contract (issue 11), in the manner of FoundationDB's
// simulator and TigerBeetle's VOPR: the real stage logic — native packet decoding, binner,
// tokenizer, decoder backlog bound, decode stage (catch-up, repair, epoch reset) and the publish
// guard — runs on a virtual host clock, with no thread and no socket, through a seeded random
// timeline of faults: loss, duplicates, reorder and jitter, 100x bursts, silence, host stalls
// (nothing runs, packets queue), consumer stalls (the decoder is slow), device clock jumps back and
// forward, device restarts (clock and sequence numbers reset), sender restarts (sequence numbers
// reset) and several streams. After every step it checks the contract:
//   - wire seq +1 per published prediction, never repeated, never back (guard refusals = 0);
//   - within an epoch every chunk from the first on exactly once, in order; kNewEpoch exactly on
//     the first chunk of each epoch after the first;
//   - conservation of events at every stage (ingest, binner, tokenizer, decoder bound);
//   - every published value finite;
//   - bounded memory (decoder backlog, held suspect packets);
//   - no silence: while the source is anchored and neither the host nor the consumer is stalled,
//     predictions keep coming on the deadline schedule.
// A failing run names its seed; `contract_sim --seed S --chunks N` replays it exactly.
#pragma once

#include <cstdint>
#include <string>

namespace spikeflow::sim {

struct SimOptions {
  uint64_t seed = 1;
  uint64_t chunks = 50'000;  ///< stop once this many predictions were published
  bool verbose = false;      ///< print the fault timeline
};

struct SimReport {
  bool ok = true;
  std::string failure;  ///< first violated invariant, with virtual time and step
  uint64_t steps = 0;
  uint64_t predictions = 0;
  uint64_t epochs = 0;     ///< epoch changes published
  uint64_t datagrams = 0;  ///< datagrams put on the simulated network
  uint64_t events_sent = 0;
  uint64_t late_events = 0;
  uint64_t catch_up_chunks = 0;
  uint64_t shed_chunks = 0;
  uint64_t repaired = 0;
  uint64_t no_source_chunks = 0;
  uint64_t faults = 0;   ///< fault episodes injected
  double virtual_s = 0;  ///< simulated host time
  std::string summary() const;
};

SimReport run_simulation(const SimOptions& options);

}  // namespace spikeflow::sim
