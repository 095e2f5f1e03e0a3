#include "stages/tokenizer.h"

#include "core/chunk_flags.h"
#include "core/time.h"

namespace spikeflow::stages {

void Tokenizer::tokenize(const core::RawChunk& chunk, core::TokenChunk& out) {
  out.seq = chunk.seq;
  out.epoch = chunk.epoch;
  out.start_ns = chunk.start_ns;
  out.end_ns = chunk.end_ns;
  out.flags = chunk.flags;
  out.timing = chunk.timing;
  out.clear_tokens();
  out.unit.reserve(chunk.events.size());
  out.offset_s.reserve(chunk.events.size());
  bool unknown = false;
  for (const auto& e : chunk.events) {
    const int32_t idx = unit_map_.find(e.channel, e.unit);
    if (idx == core::UnitMap::kUnknown) {
      ++stats_.unknown_unit_events;
      unknown = true;
      continue;
    }
    out.unit.push_back(idx);
    out.offset_s.push_back(core::offset_in_chunk_s(e.t_ns, chunk.start_ns));
  }
  stats_.tokens += out.unit.size();
  if (unknown) core::set_flag(out.flags, core::ChunkFlag::kUnknownUnits);
  if (out.empty()) core::set_flag(out.flags, core::ChunkFlag::kEmpty);
}

}  // namespace spikeflow::stages
