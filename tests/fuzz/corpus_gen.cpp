// Writes the fuzz targets' seed corpora with spikeflow's own writers and encoders (and, for
// NWB / MAT, the replay tests' fixture writers), one folder per target:
//   fuzz_corpus_gen <corpus-dir>        e.g. build-fuzz/tests/fuzz/fuzz_corpus_gen
//   tests/fuzz/corpus
// The output is committed; rerun after a format change. Small inputs on purpose: the fuzzer
// mutates them, it does not need realistic sizes. Crashing inputs found later are added to the
// same folders by hand (named crash-<what>), so do not delete a folder before regenerating.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "cli/listen_csv.h"
#include "models/checkpoint_file.h"
#include "pipeline/pipeline_config.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"
#include "stages/blackrock_packet.h"
#include "stages/intan_spike_stream.h"
#include "stages/native_packet.h"
#include "stages/native_stream_framer.h"
#include "stages/prediction_codec.h"
#include "tests/replay/nwb_test_util.h"
#include "tests/replay/test_util.h"

namespace fs = std::filesystem;
using namespace spikeflow;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}
void put(const std::string& target, const std::string& name, const std::string& text) {
  put(target, name, std::vector<uint8_t>(text.begin(), text.end()));
}
std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}
void copy_file(const std::string& target, const std::string& name, const std::string& path) {
  put(target, name, slurp(path));
}

std::vector<core::SpikeEvent> events(size_t n, int64_t t0) {
  std::vector<core::SpikeEvent> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back({t0 + static_cast<int64_t>(i) * 1000, static_cast<uint32_t>(i % 7),
                   static_cast<uint16_t>(i % 3), 0});
  }
  return out;
}

void native() {
  for (size_t n : {0, 1, 5}) {
    std::vector<uint8_t> b;
    const auto ev = events(n, 1'000'000);
    stages::encode_native_packet({7, static_cast<uint32_t>(n), 42, 2'000'000}, ev, b);
    put("native_packet_fuzz", "packet_" + std::to_string(n), b);
  }
  // The framer: a split seed byte, then frames (three packets, one heartbeat).
  std::vector<uint8_t> s{0x11};
  for (uint64_t seq = 0; seq < 3; ++seq) {
    const auto ev = events(seq + 1, 1'000'000 * static_cast<int64_t>(seq + 1));
    stages::encode_native_frame(
        {1, static_cast<uint32_t>(ev.size()), seq, 1'000'000 * static_cast<int64_t>(seq + 2)}, ev,
        s);
  }
  stages::encode_native_frame({1, 0, 3, 9'000'000}, {}, s);
  put("native_stream_framer_fuzz", "frames", s);
}

void blackrock() {
  // Byte 0 = options (bits 0-1 protocol: 0 = 3.11, 1 = 4.0, 2 = 4.1), then u16 length + datagram.
  for (uint8_t proto = 0; proto < 3; ++proto) {
    const auto p = static_cast<stages::BlackrockProtocol>(proto);
    std::vector<uint8_t> input{proto};
    for (int d = 0; d < 2; ++d) {
      std::vector<uint8_t> dg;
      stages::encode_blackrock_heartbeat(p, 1000 + d * 300, dg);
      stages::encode_blackrock_spike(p, 1010 + d * 300, 3, 1, 0, dg);
      stages::encode_blackrock_spike(p, 1020 + d * 300, 200, 255, 4, dg);
      stages::encode_blackrock_spike(p, 1030 + d * 300, 12, 0, 48, dg);
      const uint8_t cont[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      stages::encode_blackrock_packet(p, {1040u + d * 300u, 0, 5, 0, 0}, cont, dg);
      input.push_back(static_cast<uint8_t>(dg.size()));
      input.push_back(static_cast<uint8_t>(dg.size() >> 8));
      input.insert(input.end(), dg.begin(), dg.end());
    }
    put("blackrock_packet_decoder_fuzz", "protocol_" + std::to_string(proto), input);
  }
}

void intan() {
  // Byte 0 = options (bit 0 raw_spike_id, bits 1-2 sample rate) and the split seed.
  for (uint8_t o : {0, 1}) {
    std::vector<uint8_t> s{o};
    stages::encode_intan_spike("A-000", 100, 0x40, s);
    stages::encode_intan_spike("B-017", 200, 0x02, s);
    stages::encode_intan_spike("H-127", 300, 0x80, s);
    s.push_back(0xAB);  // a byte out of sync
    stages::encode_intan_spike("C-005", 0xFFFFFFF0u, 0x08, s);
    stages::encode_intan_spike("C-005", 20, 0x01, s);  // after a wrap
    put("intan_spike_stream_fuzz", "stream_" + std::to_string(o), s);
  }
}

void prediction() {
  core::Prediction p;
  p.seq = 12;
  p.start_ns = 600'000'000;
  p.end_ns = 650'000'000;
  p.flags = 3;
  p.n_tokens = 17;
  for (int dim : {0, 2, core::kMaxOutputDim}) {
    p.output_dim = dim;
    for (int i = 0; i < dim; ++i)
      p.values[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i) - 1.0f;
    std::vector<uint8_t> b;
    stages::encode_prediction(p, b);
    put("prediction_codec_fuzz", "dim_" + std::to_string(dim), b);
  }
}

replay::Session small_session() {
  replay::SynthOptions o;
  o.num_units = 3;
  o.duration_s = 1.5;
  o.behavior_dt_s = 0.1;
  o.num_directions = 4;
  return replay::synthesize_session(o);
}

void session(const fs::path& tmp) {
  const std::string path = (tmp / "s.sfs").string();
  replay::write_session_file(small_session(), path);
  copy_file("session_file_fuzz", "synth.sfs", path);
  replay::Session empty;
  empty.end_ns = 1;
  replay::write_session_file(empty, path);
  copy_file("session_file_fuzz", "empty.sfs", path);
}

void recording(const fs::path& tmp) {
  const std::string path = (tmp / "r.sfrec").string();
  {
    replay::RecordingWriter w;
    w.open(path);
    w.write_config("ingest:\n  port: 1\n");
    w.write_model("ridge", "sha256:00");
    w.write_units({{1, 0}, {2, 1}});
    core::EventBatch b;
    b.arrival_host_ns = 5;
    b.device_time_ns = 2000;
    b.events = events(3, 1000);
    w.write_events(b);
    core::Prediction p;
    p.output_dim = 2;
    p.values = {1.0f, -1.0f};
    w.write_prediction(p);
    w.close();
  }
  copy_file("recording_file_fuzz", "clean.sfrec", path);
  auto bytes = slurp(path);
  bytes.resize(bytes.size() - 20);
  put("recording_file_fuzz", "torn.sfrec", bytes);
}

void checkpoint(const fs::path& tmp) {
  const std::string path = (tmp / "c.ckpt").string();
  models::CheckpointFile ck;
  ck.kind = "ridge";
  ck.set_int("width_ns", 50'000'000);
  ck.set_double("lambda", 0.25);
  ck.set_floats("mean", {1.5f, -2.0f});
  ck.set_units("units", {{1, 0}, {4, 2}});
  ck.set_strings("behavior_names", {"vx", "vy"});
  ck.payload = std::string("\x01\x02\x03\x04\x00\x00\x80\x3f", 8);
  ck.write(path);
  copy_file("checkpoint_file_fuzz", "ridge.ckpt", path);
}

void nwb(const fs::path& tmp) {
  // Byte 0 = read options (bit 0: condition column "target_id"); the rest is the file.
  const std::string path = (tmp / "n.nwb").string();
  replay::testing::NwbFixture f;
  replay::testing::write_nwb(path, f);
  auto bytes = slurp(path);
  bytes.insert(bytes.begin(), uint8_t{1});
  put("nwb_session_reader_fuzz", "fixture.nwb", bytes);
  replay::testing::NwbFixture g;
  g.electrodes.reset();
  g.electrode_table_rows = -1;
  g.timestamps.reset();
  g.starting_time = 0.0;
  g.rate = 4.0;
  g.trials = false;
  replay::testing::write_nwb(path, g);
  bytes = slurp(path);
  bytes.insert(bytes.begin(), uint8_t{0});
  put("nwb_session_reader_fuzz", "rate_no_trials.nwb", bytes);
}

void mat(const fs::path& tmp) {
  auto trials = replay::testing::small_trials();
  trials.resize(2);
  for (auto& t : trials) {  // fewer bins: smaller seeds
    t.bins = 2;
    t.spikes.resize(t.bins * t.units);
    t.vel_rows = 2;
    t.vel.resize(4);
  }
  const std::string v5 = (tmp / "m5.mat").string();
  replay::testing::write_trial_mat(v5, MAT_FT_MAT5, "trial_data", trials);
  copy_file("mat_session_reader_fuzz", "trial_data_v5.mat", v5);
  const std::string v73 = (tmp / "m73.mat").string();
  replay::testing::write_trial_mat(v73, MAT_FT_MAT73, "trial_data", trials);
  copy_file("mat_session_reader_fuzz", "trial_data_v73.mat", v73);
}

void config() {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) + "/configs/live_native.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  put("config_reader_fuzz", "live_native.yaml", text);
  pipeline::PipelineConfig c;
  c.ingest.format = pipeline::IngestFormat::kBlackrock;
  c.ingest.blackrock_protocol = stages::BlackrockProtocol::kV3_11;
  c.decoder.checkpoint = "m.ckpt";
  c.publish.format = pipeline::PublishFormat::kJson;
  put("config_reader_fuzz", "blackrock.yaml", pipeline::to_yaml(c));
  put("config_reader_fuzz", "empty.yaml", std::string("{}\n"));
}

void listen_csv() {
  std::string s = std::string(cli::kListenCsvHeader) + "\n";
  s += "0,0,50000000,0,12,1.5,-0.25,100,200,300\n";
  s += "1,50000000,100000000,1,0,0,0,0,0,\n";
  put("listen_csv_fuzz", "two_rows.csv", s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_corpus_gen <corpus-dir>\n");
    return 2;
  }
  g_root = argv[1];
  const fs::path tmp =
      fs::temp_directory_path() / ("spikeflow_corpus_gen_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  try {
    native();
    blackrock();
    intan();
    prediction();
    session(tmp);
    recording(tmp);
    checkpoint(tmp);
    nwb(tmp);
    mat(tmp);
    config();
    listen_csv();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_corpus_gen: %s\n", e.what());
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  return 0;
}
