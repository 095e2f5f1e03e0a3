#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {
namespace {

TEST(PipelineConfigTest, empty_text_gives_the_documented_defaults) {
  auto c = parse_pipeline_config("", "defaults");
  EXPECT_EQ(c.ingest.address, "127.0.0.1");
  EXPECT_EQ(c.chunking.width_ns, 50'000'000);
  EXPECT_EQ(c.chunking.lateness_ns, 2'000'000);
  EXPECT_EQ(c.publish.format, "binary");
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
  EXPECT_EQ(c.publish.format, "json");
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
    for (const char* key : {"ingest.port", "ingest.colour: unknown key", "chunking.width_ms",
                            "chunking.lateness_ms", "decoder.device", "publish.endpoint",
                            "publish.format", "extra_section: unknown key"}) {
      EXPECT_NE(m.find(key), std::string::npos) << key << " missing from: " << m;
    }
    EXPECT_EQ(e.problems().size(), 8u) << m;
  }
}

TEST(PipelineConfigTest, missing_file_and_bad_yaml_name_the_file) {
  try {
    load_pipeline_config("/nonexistent/dir/x.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.yaml: cannot open"), std::string::npos);
  }
  const auto path = std::filesystem::temp_directory_path() / "spikeflow_bad_syntax.yaml";
  std::ofstream(path) << "ingest: [unclosed\n";
  try {
    load_pipeline_config(path.string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": YAML syntax error"), std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST(PipelineConfigTest, shipped_configs_are_valid) {
  for (const auto& entry : std::filesystem::directory_iterator(SPIKEFLOW_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(load_pipeline_config(entry.path().string())) << entry.path();
  }
}

}  // namespace
}  // namespace spikeflow::pipeline

namespace spikeflow::pipeline {
namespace {

TEST(PipelineConfigTest, to_yaml_round_trips_every_value) {
  auto c = parse_pipeline_config(
      "ingest: {format: intan, transport: tcp, port: 5001, sample_rate_hz: 20000}\n"
      "chunking: {width_ms: 20, lateness_ms: 1.5, deadline_grace_ms: 7}\n"
      "decoder: {checkpoint: m.ckpt, max_batch: 8}\npublish: {format: json, topic: vel}\n"
      "record: {path: r.sfrec}\n",
      "t.yaml");
  auto d = parse_pipeline_config(to_yaml(c), "round trip");
  EXPECT_EQ(to_yaml(c), to_yaml(d));
  EXPECT_EQ(d.ingest.format, "intan");
  EXPECT_EQ(d.ingest.sample_rate_hz, 20000);
  EXPECT_EQ(d.chunking.lateness_ns, 1'500'000);
  EXPECT_EQ(d.decoder.max_batch, 8);
  EXPECT_EQ(d.publish.topic, "vel");
  EXPECT_EQ(d.record.path, "r.sfrec");
}

// Found by config_reader_fuzz: a string value with bytes that are not UTF-8 (here ingest.address)
// was accepted, but to_yaml writes such bytes as U+FFFD, so the config a recording keeps read back
// to another value. Such strings are now a config error. The input stays in the fuzz corpus.
TEST(PipelineConfigTest, fuzz_regression_invalid_utf8_string_is_an_error) {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) + "/tests/fuzz/corpus/config_reader_fuzz/regress-invalid-utf8.yaml",
                   std::ios::binary);
  const std::string crash((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(crash.empty());
  try {
    parse_pipeline_config(crash, "crash.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ingest.address: not valid UTF-8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_pipeline_config("publish: {topic: \"p\xff\"}\n", "t.yaml"), ConfigError);
  EXPECT_THROW(parse_pipeline_config("record: {path: \"\xc0\xaf\"}\n", "t.yaml"), ConfigError);  // overlong '/'
  // Valid non-ASCII text still round-trips.
  const auto c = parse_pipeline_config("record: {path: \"r\xc3\xa9sultat.sfrec\"}\n", "t.yaml");
  EXPECT_EQ(parse_pipeline_config(to_yaml(c), "again.yaml").record.path, c.record.path);
}

}  // namespace
}  // namespace spikeflow::pipeline
