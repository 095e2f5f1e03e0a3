// Text helpers shared by the evaluation report's writers: replay/eval_report.cpp (CSV, summary)
// and replay/eval_report_html.cpp (the HTML report). Internal to replay/; defined in
// replay/eval_report.cpp.
#pragma once

#include <string>

namespace spikeflow::replay::eval_text {

/// v printed with a printf spec for one double ("%.4f" by default); "n/a" when not finite.
std::string fmt(double v, const char* spec = "%.4f");

/// Writes text to path, replacing the file. Throws std::runtime_error naming the path when it
/// cannot be opened or written.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace spikeflow::replay::eval_text
