// spikeflow export: a recording of a live run as an NWB 2.x file (replay/nwb_writer.h), with the
// behaviour and trials of a session when one is given. Flags only.
#include <fmt/format.h>

#include <memory>
#include <stdexcept>

#include "cli/commands.h"
#include "replay/nwb_writer.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct ExportArgs {
  std::string recording, out, session, identifier, description;
};

int run_export(const ExportArgs& a) {
  const replay::Recording rec = replay::read_recording(a.recording);
  if (!rec.problem.empty()) fmt::print("export: warning: {}\n", rec.problem);
  if (!rec.clean_end)
    fmt::print("export: warning: {} was not closed cleanly ({} bytes lost)\n", a.recording,
               rec.bytes_lost);
  std::unique_ptr<replay::Session> session;
  if (!a.session.empty())
    session = std::make_unique<replay::Session>(replay::load_session(a.session));
  replay::NwbWriteOptions o;
  o.identifier = a.identifier;
  o.session_description = a.description;
  o.source = a.recording;
  o.software_version = "spikeflow " SPIKEFLOW_VERSION;
  const auto st = replay::write_nwb_recording(a.out, rec, session.get(), o);
  fmt::print(
      "export: {}: {} units ({} not in the unit map), {} spikes, {} electrodes, {} predictions",
      a.out, st.units, st.unmapped_units, st.spikes, st.electrodes, st.predictions);
  if (session) fmt::print(", {} behaviour samples, {} trials", st.behavior_samples, st.trials);
  fmt::print("\n");
  if (st.renumbered_units > 0) {
    fmt::print(
        "export: warning: {} units have codes other than 1, 2, ... per channel; NWB readers that "
        "number units "
        "per channel (spikeflow's included) will not give them their recorded codes (the "
        "/units/unit column "
        "keeps them)\n",
        st.renumbered_units);
  }
  if (!session) {
    fmt::print(
        "export: no --session: the file has no behaviour or trials (`spikeflow replay -s` needs "
        "behaviour)\n");
  }
  return 0;
}

}  // namespace

Command add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  app.add_option("recording", a->recording, "recording of a live run (`run --record`, record.path)")
      ->required();
  app.add_option("-o,--out", a->out, "NWB file to write (.nwb)")->required();
  app.add_option("-s,--session", a->session,
                 "session the run played (.sfs, .mat, .nwb): behaviour and trials");
  app.add_option("--identifier", a->identifier, "NWBFile identifier (default: a fresh UUID)");
  app.add_option("--description", a->description, "NWBFile session_description");
  return [a] {
    if (a->out == a->recording)
      throw std::runtime_error("export: --out must not be the recording itself");
    return run_export(*a);
  };
}

}  // namespace spikeflow::cli
