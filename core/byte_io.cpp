#include "core/byte_io.h"

namespace spikeflow::core {

void ByteWriter::write_bytes(std::span<const uint8_t> b) {
  out_.insert(out_.end(), b.data(), b.data() + b.size());
}

}  // namespace spikeflow::core
