// CidrSet: the sources ingest accepts (`ingest.allow`), a set of IPv4 and IPv6 prefixes in CIDR
// notation (RFC 4632; IPv6 prefixes RFC 4291 section 2.3). Parsed once at setup; contains() is
// the per-datagram check on the ingest thread: no allocation, no locks, no I/O.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket bound to :: reports for
// an IPv4 sender) is matched as the IPv4 address it carries, so "10.0.0.0/8" covers it.
// Immutable after construction; any thread may call contains() concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace spikeflow::pipeline {

class CidrSet {
 public:
  /// One prefix: the address bytes (IPv4 uses the first 4) and the prefix length in bits.
  struct Prefix {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    int length = 0;
    bool operator==(const Prefix&) const = default;
  };

  CidrSet() = default;

  /// Parses "a.b.c.d/n" (n in 0..32) or "x:y::z/n" (n in 0..128); an address without "/n" is a
  /// single host (/32 or /128). Host bits set below the prefix are an error ("10.1.2.3/24" is
  /// ambiguous: did you mean the host or the network?). nullopt with *error set on failure.
  static std::optional<Prefix> parse_prefix(const std::string& text, std::string* error = nullptr);

  /// Every entry parsed; throws std::invalid_argument "'<text>': <why>" naming the first bad one.
  static CidrSet parse(const std::vector<std::string>& texts);

  /// 127.0.0.0/8 and ::1/128: the default when ingest binds to a loopback address.
  static CidrSet loopback();

  /// Whether address lies in any prefix. An empty set contains nothing.
  bool contains(const boost::asio::ip::address& address) const;

  const std::vector<Prefix>& prefixes() const { return prefixes_; }
  bool empty() const { return prefixes_.empty(); }
  /// "127.0.0.0/8, ::1/128" (canonical spelling of each prefix).
  std::string to_string() const;

 private:
  std::vector<Prefix> prefixes_;
};

/// Whether address is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x).
bool is_loopback(const boost::asio::ip::address& address);

}  // namespace spikeflow::pipeline
