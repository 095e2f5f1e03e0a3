// The split every command shares lives in pipeline/data_split.h (the Python module and the
// shared training runs use it too); these names keep the commands' spelling.
#pragma once

#include "pipeline/data_split.h"

namespace spikeflow::cli {

using pipeline::build_range;
using pipeline::make_split;
using pipeline::Split;

}  // namespace spikeflow::cli
