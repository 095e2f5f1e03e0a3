#include "replay/behavior_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include "core/file_check.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::TempDir;

std::string write_text(const TempDir& d, const std::string& name, const std::string& text) {
  std::ofstream(d.file(name)) << text;
  return d.file(name);
}

/// The message of what f throws, which must be one line naming `file`.
template <typename F>
std::string one_line_error(F&& f, const std::string& file) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(file), std::string::npos) << m;
    return m;
  }
  ADD_FAILURE() << "no error for " << file;
  return {};
}

TEST(BehaviorFile, csv_round_trips_and_session_files_give_their_behaviour) {
  TempDir d("behavior");
  SynthOptions so;
  so.num_units = 4;
  so.duration_s = 3;
  const Session s = synthesize_session(so);
  write_behavior_csv(behavior_of(s), d.file("b.csv"));
  const BehaviorSeries b = read_behavior_file(d.file("b.csv"));
  EXPECT_EQ(b.names, s.behavior_names);
  ASSERT_EQ(b.t_ns.size(), s.behavior_t_ns.size());
  EXPECT_EQ(b.t_ns, s.behavior_t_ns);
  for (size_t i = 0; i < b.values.size(); ++i) EXPECT_FLOAT_EQ(b.values[i], s.behavior[i]);
  write_session_file(s, d.file("s.sfs"));
  EXPECT_EQ(read_behavior_file(d.file("s.sfs")).t_ns, s.behavior_t_ns);
  // Comments, blank lines and CRLF are fine.
  const auto ok = write_text(d, "ok.csv", "# hand velocity\r\nt_s, vx, vy\r\n\r\n0,1,2\r\n0.5,3,4\r\n");
  const auto c = read_behavior_file(ok);
  EXPECT_EQ(c.names, (std::vector<std::string>{"vx", "vy"}));
  EXPECT_EQ(c.t_ns, (std::vector<int64_t>{0, 500'000'000}));
  EXPECT_EQ(c.values, (std::vector<float>{1, 2, 3, 4}));
}

TEST(BehaviorFile, bad_csv_is_one_line_naming_the_file_and_line) {
  TempDir d("behavior");
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "is empty"},
      {"# only a comment\n", "no header"},
      {"time,vx\n0,1\n1,2\n", "expected a header"},
      {"t_s,vx\n0,1\n", "1 sample(s)"},
      {"t_s,vx\n0,1\n1\n", ":3: 1 columns"},
      {"t_s,vx\n0,1\n1,abc\n", "vx 'abc' is not a finite number"},
      {"t_s,vx\n0,1\n1,nan\n", "not a finite number"},
      {"t_s,vx\n0,1\n1,1e300\n", "out of float range"},
      {"t_s,vx\n1,1\n0.5,2\n", "strictly ascending"},
      {"t_s,vx\n0,1\n0,2\n", "strictly ascending"},
  };
  int i = 0;
  for (const auto& [text, want] : cases) {
    const auto p = write_text(d, "bad" + std::to_string(i++) + ".csv", text);
    const std::string m = one_line_error([&] { read_behavior_file(p); }, p);
    EXPECT_NE(m.find(want), std::string::npos) << m;
  }
  one_line_error([&] { read_behavior_file(d.file("missing.csv")); }, d.file("missing.csv"));
  EXPECT_THROW(read_behavior_file(d.file("missing.csv")), core::InputFileError);
}

Recording recording_of(const Session& s) {
  Recording r;
  for (const auto& e : merged_events(s, s.start_ns, s.end_ns)) {
    if (r.batches.empty() || r.batches.back().events.size() == 32) r.batches.emplace_back();
    r.batches.back().events.push_back(e);
  }
  r.batches.emplace_back();  // an empty packet (e.g. a tick marker) is skipped
  return r;
}

TEST(BehaviorFile, a_recording_and_behaviour_make_a_session_on_the_device_clock) {
  SynthOptions so;
  so.num_units = 6;
  so.duration_s = 4;
  const Session s = synthesize_session(so);
  const Session got =
      session_from_recording(recording_of(s), "r.sfrec", behavior_of(s), "b.csv", 50'000'000);
  EXPECT_EQ(got.num_spikes(), s.num_spikes());
  EXPECT_EQ(got.behavior_names, s.behavior_names);
  EXPECT_TRUE(got.trials.empty());
  EXPECT_LE(got.behavior_t_ns.front(), got.start_ns);
  EXPECT_GE(got.behavior_t_ns.back() + 50'000'000, got.end_ns);
  // The same spikes per unit, units keyed by (channel, unit).
  for (size_t i = 0; i < s.num_units(); ++i) {
    size_t j = 0;
    while (j < got.units.size() && !(got.units[j] == s.units[i])) ++j;
    ASSERT_LT(j, got.units.size());
    EXPECT_EQ(got.spike_times_ns[j], s.spike_times_ns[i]);
  }
}

TEST(BehaviorFile, behaviour_that_does_not_cover_the_spikes_is_refused_naming_both_files) {
  SynthOptions so;
  so.num_units = 6;
  so.duration_s = 4;
  const Session s = synthesize_session(so);
  const Recording rec = recording_of(s);
  BehaviorSeries shifted = behavior_of(s);
  for (auto& t : shifted.t_ns) t += 100'000'000'000;  // another clock
  std::string m = one_line_error(
      [&] { session_from_recording(rec, "r.sfrec", shifted, "b.csv", 50'000'000); }, "b.csv");
  EXPECT_NE(m.find("does not overlap"), std::string::npos) << m;
  EXPECT_NE(m.find("r.sfrec"), std::string::npos) << m;
  BehaviorSeries half = behavior_of(s);
  const size_t n = half.t_ns.size() / 2;
  half.t_ns.resize(n);
  half.values.resize(n * half.names.size());
  m = one_line_error([&] { session_from_recording(rec, "r.sfrec", half, "b.csv", 50'000'000); },
                     "b.csv");
  EXPECT_NE(m.find("must cover them"), std::string::npos) << m;
  one_line_error(
      [&] { session_from_recording(Recording{}, "r.sfrec", behavior_of(s), "b.csv", 0); },
      "r.sfrec");
}

}  // namespace
}  // namespace spikeflow::replay
