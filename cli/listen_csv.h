// The listen CSV's reader moved to pipeline/listen_csv.h (the profile experiment reads it too);
// cli/ keeps these names for cmd_listen and cmd_eval.
#pragma once

#include "pipeline/listen_csv.h"

namespace spikeflow::cli {

using pipeline::kListenCsvHeader;
using pipeline::read_listen_csv;
using pipeline::ReceivedPrediction;

}  // namespace spikeflow::cli
