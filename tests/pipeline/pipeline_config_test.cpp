#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "models/load_decoder.h"
#include "models/trainer.h"
#include "pipeline/config_keys.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/preflight.h"
#include "pipeline/profile_experiment.h"
#include "tests/common/test_support.h"

namespace spikeflow::pipeline {
namespace {

TEST(PipelineConfigTest, empty_text_gives_the_documented_defaults) {
  auto c = parse_pipeline_config("", "defaults");
  EXPECT_EQ(c.ingest.address, "127.0.0.1");
  EXPECT_EQ(c.chunking.width_ns, 50'000'000);
  EXPECT_EQ(c.chunking.lateness_ns, 2'000'000);
  EXPECT_EQ(c.publish.format, PublishFormat::kBinary);
  // Defaults a stage owns come from its Options struct.
  EXPECT_EQ(c.chunking.width_ns, stages::BinnerOptions{}.width_ns);
  EXPECT_EQ(c.ingest.blackrock_protocol, stages::BlackrockOptions{}.protocol);
  EXPECT_EQ(c.ingest.blackrock_fe_channels,
            static_cast<int>(stages::BlackrockOptions{}.fe_channel_count));
}

TEST(PipelineConfigTest, values_are_read_with_units) {
  auto c = parse_pipeline_config(
      "ingest: {port: 5000}\nchunking: {width_ms: 20, lateness_ms: 1.5}\n"
      "decoder: {checkpoint: m.ckpt, threads: 2}\npublish: {format: json}\n",
      "t.yaml");
  EXPECT_EQ(c.ingest.port, 5000);
  EXPECT_EQ(c.chunking.width_ns, 20'000'000);
  EXPECT_EQ(c.chunking.lateness_ns, 1'500'000);
  EXPECT_EQ(c.decoder.checkpoint, "m.ckpt");
  EXPECT_EQ(c.decoder.threads, 2);
  EXPECT_EQ(c.publish.format, PublishFormat::kJson);
}

TEST(PipelineConfigTest, every_problem_is_reported_at_once) {
  const std::string yaml =
      "ingest: {port: 70000, colour: blue}\n"
      "chunking: {width_ms: 0, lateness_ms: abc}\n"
      "decoder: {device: tpu}\n"
      "publish: {endpoint: 'http://x', format: xml}\n"
      "extra_section: 1\n";
  try {
    parse_pipeline_config(yaml, "bad.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(m.rfind("bad.yaml: ", 0), 0u);
    for (const char* key :
         {"ingest.port", "ingest.colour: unknown key", "chunking.width_ms", "chunking.lateness_ms",
          "decoder.device", "publish.endpoint", "publish.format", "extra_section: unknown key"}) {
      EXPECT_NE(m.find(key), std::string::npos) << key << " missing from: " << m;
    }
    EXPECT_EQ(e.problems().size(), 8u) << m;
  }
}

TEST(PipelineConfigTest, a_duplicate_key_is_an_error_not_first_wins) {
  try {
    parse_pipeline_config(
        "ingest:\n  port: 5000\n  port: 6000\nmetrics: {print_interval_s: 1}\nmetrics: {}\n",
        "dup.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ingest.port: duplicate key"), std::string::npos) << m;
    EXPECT_NE(m.find("metrics: duplicate key"), std::string::npos) << m;
  }
}

TEST(PipelineConfigTest, missing_file_directory_and_bad_yaml_name_the_file) {
  testing::TempDir dir("config");
  try {
    load_pipeline_config("/nonexistent/dir/x.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.yaml: no such config file"),
              std::string::npos)
        << e.what();
  }
  try {
    std::ofstream(dir.file("empty.yaml")).flush();
    load_pipeline_config(dir.file("empty.yaml"));
    FAIL() << "an empty file (a failed write?) must not run on defaults";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("empty.yaml: config file is empty"), std::string::npos)
        << e.what();
  }
  try {
    load_pipeline_config(dir.path().string());
    FAIL() << "a directory must not run on defaults";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string() + ": is a directory"),
              std::string::npos)
        << e.what();
  }
  const auto path = dir.file("bad_syntax.yaml");
  std::ofstream(path) << "ingest: [unclosed\n";
  try {
    load_pipeline_config(path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": YAML syntax error"), std::string::npos);
  }
}

TEST(PipelineConfigTest, relative_paths_resolve_against_the_config_files_folder) {
  testing::TempDir dir("config");
  std::filesystem::create_directories(dir.path() / "configs");
  const auto path = (dir.path() / "configs" / "c.yaml").string();
  std::ofstream(path) << "decoder: {checkpoint: ../out/m.ckpt}\nrecord: {path: r.sfrec}\n";
  const auto c = load_pipeline_config(path);
  EXPECT_EQ(c.decoder.checkpoint, (dir.path() / "out" / "m.ckpt").string());
  EXPECT_EQ(c.record.path, (dir.path() / "configs" / "r.sfrec").string());
  std::ofstream(path) << "decoder: {checkpoint: /abs/m.ckpt}\n";
  EXPECT_EQ(load_pipeline_config(path).decoder.checkpoint, "/abs/m.ckpt");
  EXPECT_EQ(parse_pipeline_config("decoder: {checkpoint: m.ckpt}", "text").decoder.checkpoint,
            "m.ckpt");
}

TEST(PipelineConfigTest, shipped_configs_are_valid) {
  for (const auto& entry : std::filesystem::directory_iterator(SPIKEFLOW_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(load_pipeline_config(entry.path().string())) << entry.path();
  }
}

TEST(PipelineConfigTest, to_yaml_round_trips_every_value) {
  auto c = parse_pipeline_config(
      "ingest: {format: intan, transport: tcp, port: 5001, sample_rate_hz: 20000}\n"
      "chunking: {width_ms: 20, lateness_ms: 1.5, deadline_grace_ms: 7}\n"
      "decoder: {checkpoint: m.ckpt, max_batch: 8}\npublish: {format: json, topic: vel}\n"
      "record: {path: r.sfrec}\n",
      "t.yaml");
  auto d = parse_pipeline_config(to_yaml(c), "round trip");
  EXPECT_EQ(d.ingest.format, IngestFormat::kIntan);
  EXPECT_EQ(d.ingest.sample_rate_hz, 20000);
  EXPECT_EQ(d.chunking.lateness_ns, 1'500'000);
  EXPECT_EQ(d.decoder.max_batch, 8);
  EXPECT_EQ(d.publish.topic, "vel");
  EXPECT_EQ(d.record.path, "r.sfrec");
  for (const auto& k : pipeline_config_keys()) EXPECT_EQ(k.text(d), k.text(c)) << k.name;
}

// The key table is the contract: every key appears in to_yaml (at its dotted path), is described,
// and a non-default value written for it reads back.
TEST(ConfigKeyTableTest, every_key_is_written_described_and_round_trips) {
  const auto& keys = pipeline_config_keys();
  const PipelineConfig defaults;
  const YAML::Node written = YAML::Load(to_yaml(defaults));
  std::set<std::string> names;
  for (const auto& k : keys) {
    EXPECT_TRUE(names.insert(k.name).second) << "declared twice: " << k.name;
    // Present in to_yaml at its path, with the default's text.
    YAML::Node n = written;
    std::stringstream ss(k.name);
    for (std::string part; std::getline(ss, part, '.');) n.reset(n[part]);
    ASSERT_TRUE(n.IsDefined() && n.IsScalar()) << k.name << " missing from to_yaml";
    EXPECT_EQ(n.Scalar(), k.default_text()) << k.name;
    // Described.
    EXPECT_FALSE(k.doc.empty()) << k.name;
    EXPECT_FALSE(k.type_name().empty()) << k.name;
    // A value other than the default, set through the key alone, survives to_yaml -> parse.
    // Cross-key rules (lateness <= width, ...) would reject some extremes: legal values for those.
    const std::map<std::string, std::string> legal{
        {"chunking.width_ms", "40"},          {"chunking.lateness_ms", "3"},
        {"chunking.deadline_grace_ms", "20"}, {"chunking.max_grace_ms", "30"},
        {"chunking.max_future_ms", "60"},     {"ingest.allow", "10.1.2.0/24, ::1/128"},
        {"ingest.connect", "127.0.0.1:5002"}, {"realtime.affinity.ingest", "0-1,3"},
        {"realtime.affinity.ticker", "1"},    {"realtime.affinity.graph", "0,2-3"},
        {"realtime.affinity.decoder", "1-2"}, {"realtime.affinity.zmq_io", "2"}};
    // Keys valid only with a sibling set too: that sibling, written beside the key.
    const std::map<std::string, std::string> sibling{{"ingest.connect", "transport: tcp"}};
    std::string other;
    const auto i64 = [](double v) { return fmt::format("{}", static_cast<int64_t>(v)); };
    switch (k.type) {
      case ConfigKeyType::kInteger:
        other = k.default_text() == i64(k.max) ? i64(k.min) : i64(k.max);
        break;
      case ConfigKeyType::kNumber:
        other = k.default_text() == fmt::format("{}", k.max) ? fmt::format("{}", k.min)
                                                             : fmt::format("{}", k.max);
        break;
      case ConfigKeyType::kBoolean:
        other = k.default_text() == "true" ? "false" : "true";
        break;
      case ConfigKeyType::kChoice: {
        const auto bar = k.choices.find('|');
        const std::string first = k.choices.substr(0, bar);
        other = first == k.default_text()
                    ? k.choices.substr(bar + 1, k.choices.find('|', bar + 1) - bar - 1)
                    : first;
        break;
      }
      case ConfigKeyType::kString:
      case ConfigKeyType::kPath:
        other = k.default_text() + "x";
        break;
    }
    if (legal.count(k.name)) other = legal.at(k.name);
    std::string yaml;
    std::vector<std::string> parts;
    std::stringstream ps(k.name);
    for (std::string part; std::getline(ps, part, '.');) parts.push_back(part);
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i + 1 == parts.size() && sibling.count(k.name))
        yaml += std::string(2 * i, ' ') + sibling.at(k.name) + "\n";
      yaml += std::string(2 * i, ' ') + parts[i] + ":" +
              (i + 1 < parts.size() ? "\n" : " '" + other + "'\n");
    }
    PipelineConfig c;
    try {
      c = parse_pipeline_config(yaml, k.name);
    } catch (const ConfigError& e) {
      ADD_FAILURE() << k.name << " = " << other << ": " << e.what();
      continue;
    }
    EXPECT_EQ(k.text(c), other) << k.name;
    EXPECT_NE(k.text(c), k.default_text()) << k.name;
    const auto d = parse_pipeline_config(to_yaml(c), "round trip");
    EXPECT_EQ(k.text(d), other) << k.name;
  }
  EXPECT_GE(keys.size(), 30u);
}

// ---------------------------------------------------------------------------------------------
// Preflight: config and checkpoint together.

std::unique_ptr<models::StreamingDecoder> model(std::vector<core::UnitKey> units,
                                                int64_t width_ns = 50'000'000) {
  return models::make_untrained_possm(models::PossmConfig{}, units, 2, width_ns,
                                      models::RuntimeOptions{});
}

bool has(const std::vector<std::string>& v, const std::string& what) {
  for (const auto& s : v) {
    if (s.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(PreflightTest, a_good_pair_has_no_problem) {
  PipelineConfig c;
  c.decoder.checkpoint = "m.ckpt";
  const auto r = preflight(c, model({{1, 1}, {2, 1}}).get(), false);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_TRUE(r.warnings.empty());
}

TEST(PreflightTest, every_problem_is_listed_at_once) {
  PipelineConfig c;
  c.decoder.device = DecoderDevice::kCuda;
  c.chunking.width_ns = 20'000'000;
  c.record.path = "/nonexistent/dir/r.sfrec";
  c.ingest.format = IngestFormat::kBlackrock;
  const auto r = preflight(c, model({{0, 1}, {300, 1}}).get(), /*cuda_available=*/false);
  EXPECT_TRUE(has(r.errors, "decoder.checkpoint: not set"));
  EXPECT_TRUE(has(r.errors, "decoder.device: cuda"));
  EXPECT_TRUE(has(r.errors, "chunking.width_ms: 20 ms, but checkpoint '' was trained on 50 ms"));
  EXPECT_TRUE(has(r.errors, "record.path: folder '/nonexistent/dir' does not exist"));
  EXPECT_TRUE(has(r.errors, "ingest.format: none of the 2 units"))
      << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.errors.size(), 5u);
  EXPECT_TRUE(preflight(c, nullptr, /*cuda_available=*/true).errors.size() ==
              2u);  // checkpoint, record
}

TEST(PreflightTest, unit_map_against_the_ingest_formats_channel_range) {
  PipelineConfig c;
  c.decoder.checkpoint = "m.ckpt";
  const auto partly = model({{1, 1}, {0, 1}, {2000, 1}});
  c.ingest.format = IngestFormat::kNative;  // any u32
  EXPECT_TRUE(preflight(c, partly.get(), false).warnings.empty());
  c.ingest.format = IngestFormat::kBlackrock;  // chid 1..256: 0 and 2000 never arrive
  auto r = preflight(c, partly.get(), false);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(has(r.warnings, "2 of the 3 units")) << ::testing::PrintToString(r.warnings);
  c.ingest.format = IngestFormat::kIntan;  // 0..1023: 2000 never arrives
  c.ingest.transport = Transport::kTcp;
  r = preflight(c, partly.get(), false);
  EXPECT_TRUE(has(r.warnings, "1 of the 3 units")) << ::testing::PrintToString(r.warnings);
  EXPECT_TRUE(has(preflight(c, model({{1024, 1}}).get(), false).errors, "none of the 1 units"));
  c.ingest.transport = Transport::kNone;  // replay: no wire format
  EXPECT_TRUE(preflight(c, model({{1024, 1}}).get(), false).errors.empty());
}

TEST(PreflightTest, load_checked_decoder_names_the_config_and_the_checkpoint) {
  testing::TempDir dir("preflight");
  PipelineConfig c;
  c.decoder.checkpoint = dir.file("m.ckpt");
  models::save_untrained_possm(c.decoder.checkpoint, models::PossmConfig{}, {{1, 1}}, 2,
                               50'000'000);
  EXPECT_NE(load_checked_decoder(c, "c.yaml"), nullptr);
  c.chunking.width_ns = 25'000'000;
  c.decoder.device = DecoderDevice::kCuda;
  try {
    load_checked_decoder(c, "c.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("c.yaml: ", 0), 0u) << m;
    EXPECT_NE(m.find("chunking.width_ms: 25 ms"), std::string::npos) << m;
    if (!models::cuda_available()) {
      EXPECT_NE(m.find("decoder.device: cuda"), std::string::npos) << m;
    }
  }
  c.decoder.checkpoint = dir.file("missing.ckpt");
  EXPECT_THROW(load_checked_decoder(c, "c.yaml"), ConfigError);
}

// Found by config_reader_fuzz: a string value with bytes that are not UTF-8 (here ingest.address)
// was accepted, but to_yaml writes such bytes as U+FFFD, so the config a recording keeps read back
// to another value. Such strings are now a config error. The input stays in the fuzz corpus.
TEST(PipelineConfigTest, fuzz_regression_invalid_utf8_string_is_an_error) {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) +
                       "/tests/fuzz/corpus/config_reader_fuzz/regress-invalid-utf8.yaml",
                   std::ios::binary);
  const std::string crash((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(crash.empty());
  try {
    parse_pipeline_config(crash, "crash.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ingest.address: not valid UTF-8"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_pipeline_config("publish: {topic: \"p\xff\"}\n", "t.yaml"), ConfigError);
  EXPECT_THROW(parse_pipeline_config("record: {path: \"\xc0\xaf\"}\n", "t.yaml"),
               ConfigError);  // overlong '/'
  // Valid non-ASCII text still round-trips.
  const auto c = parse_pipeline_config("record: {path: \"r\xc3\xa9sultat.sfrec\"}\n", "t.yaml");
  EXPECT_EQ(parse_pipeline_config(to_yaml(c), "again.yaml").record.path, c.record.path);
}

}  // namespace
}  // namespace spikeflow::pipeline

namespace spikeflow::pipeline {
namespace {

// `profile --variant`: a quoted CPU list keeps its commas and goes through the key table whole.
TEST(ProfileVariantTest, quoted_cpu_lists_and_lists_keep_their_commas) {
  const auto v = parse_profile_variant("pin:realtime.affinity.graph='0-1,1',decoder.threads=2");
  ASSERT_EQ(v.overrides.size(), 2u);
  EXPECT_EQ(v.name, "pin");
  EXPECT_EQ(v.overrides[0].first, "realtime.affinity.graph");
  EXPECT_EQ(v.overrides[0].second, "'0-1,1'");
  const PipelineConfig c = apply_config_overrides(PipelineConfig{}, v.overrides, "--variant pin");
  EXPECT_EQ(c.decoder.threads, 2);
  EXPECT_EQ(c.realtime.affinity_graph, "0-1,1");
  EXPECT_THROW(parse_profile_variant("x:decoder.threads"), ConfigError);
}

}  // namespace
}  // namespace spikeflow::pipeline
