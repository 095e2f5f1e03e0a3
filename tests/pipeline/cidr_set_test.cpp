// CidrSet: the parsed `ingest.allow` list; and the key's config errors.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "pipeline/cidr_set.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {
namespace {

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

TEST(CidrSetTest, ipv4_prefixes_match_their_network_only) {
  const auto set = CidrSet::parse({"10.1.2.0/24", "192.168.7.9"});
  EXPECT_TRUE(set.contains(ip("10.1.2.0")));
  EXPECT_TRUE(set.contains(ip("10.1.2.255")));
  EXPECT_FALSE(set.contains(ip("10.1.3.0")));
  EXPECT_TRUE(set.contains(ip("192.168.7.9")));  // no "/n": one host
  EXPECT_FALSE(set.contains(ip("192.168.7.8")));
  EXPECT_FALSE(set.contains(ip("::1")));
}

TEST(CidrSetTest, odd_prefix_lengths_and_the_extremes) {
  const auto set = CidrSet::parse({"172.16.0.0/12"});
  EXPECT_TRUE(set.contains(ip("172.31.255.255")));
  EXPECT_FALSE(set.contains(ip("172.32.0.0")));
  EXPECT_FALSE(set.contains(ip("172.15.255.255")));
  const auto any4 = CidrSet::parse({"0.0.0.0/0"});
  EXPECT_TRUE(any4.contains(ip("8.8.8.8")));
  EXPECT_FALSE(any4.contains(ip("2001:db8::1"))) << "an IPv4 prefix never matches an IPv6 address";
  const auto any6 = CidrSet::parse({"::/0"});
  EXPECT_TRUE(any6.contains(ip("2001:db8::1")));
}

TEST(CidrSetTest, ipv6_prefixes_and_v4_mapped_senders) {
  const auto set = CidrSet::parse({"2001:db8:abcd::/48", "::1/128", "10.0.0.0/8"});
  EXPECT_TRUE(set.contains(ip("2001:db8:abcd:12::1")));
  EXPECT_FALSE(set.contains(ip("2001:db8:abce::1")));
  EXPECT_TRUE(set.contains(ip("::1")));
  EXPECT_FALSE(set.contains(ip("::2")));
  // A dual-stack socket bound to :: reports IPv4 senders as ::ffff:a.b.c.d.
  EXPECT_TRUE(set.contains(ip("::ffff:10.9.8.7")));
  EXPECT_FALSE(set.contains(ip("::ffff:11.9.8.7")));
}

TEST(CidrSetTest, loopback_default_and_canonical_text) {
  const auto lo = CidrSet::loopback();
  EXPECT_TRUE(lo.contains(ip("127.0.0.1")));
  EXPECT_TRUE(lo.contains(ip("127.200.0.2")));
  EXPECT_TRUE(lo.contains(ip("::1")));
  EXPECT_TRUE(lo.contains(ip("::ffff:127.0.0.1")));
  EXPECT_FALSE(lo.contains(ip("10.0.0.1")));
  EXPECT_EQ(lo.to_string(), "127.0.0.0/8, ::1/128");
  EXPECT_FALSE(CidrSet().contains(ip("127.0.0.1"))) << "an empty set refuses everyone";
  EXPECT_TRUE(is_loopback(ip("127.0.0.2")));
  EXPECT_TRUE(is_loopback(ip("::ffff:127.0.0.1")));
  EXPECT_FALSE(is_loopback(ip("0.0.0.0")));
  EXPECT_FALSE(is_loopback(ip("::")));
}

TEST(CidrSetTest, bad_entries_say_why) {
  for (const char* bad : {"", "10.1.2.0/33", "::1/129", "10.1.2.0/-1", "10.1.2.0/", "10.1.2.0/8x",
                          "10.1.2", "host.example", "10.1.2.3/24", "fe80::1%1/128"}) {
    std::string why;
    EXPECT_FALSE(CidrSet::parse_prefix(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string why;
  CidrSet::parse_prefix("10.1.2.3/24", &why);
  EXPECT_NE(why.find("10.1.2.0/24"), std::string::npos) << why;  // names the network meant
  try {
    CidrSet::parse({"127.0.0.0/8", "10.0.0.0/40"});
    FAIL() << "must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'10.0.0.0/40'"), std::string::npos) << e.what();
  }
}

TEST(CidrSetTest, config_key_reads_a_list_or_commas_and_names_a_bad_value) {
  auto c = parse_pipeline_config("ingest:\n  allow: [10.1.2.0/24, \"::1/128\"]\n", "t.yaml");
  EXPECT_EQ(c.ingest.allow, (std::vector<std::string>{"10.1.2.0/24", "::1/128"}));
  c = parse_pipeline_config("ingest:\n  allow: \"10.1.2.0/24, ::1/128\"\n", "t.yaml");
  EXPECT_EQ(c.ingest.allow, (std::vector<std::string>{"10.1.2.0/24", "::1/128"}));
  EXPECT_EQ(to_yaml(c).find("10.1.2.0/24, ::1/128") != std::string::npos, true);
  EXPECT_TRUE(parse_pipeline_config("", "t.yaml").ingest.allow.empty());
  try {
    parse_pipeline_config("ingest:\n  allow: [10.1.2.0/24, 10.1.2.0/99]\n", "t.yaml");
    FAIL() << "must throw";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("t.yaml"), std::string::npos) << what;
    EXPECT_NE(what.find("ingest.allow: '10.1.2.0/99'"), std::string::npos) << what;
  }
  EXPECT_THROW(parse_pipeline_config("ingest:\n  allow: {a: 1}\n", "t.yaml"), ConfigError);
}

}  // namespace
}  // namespace spikeflow::pipeline
