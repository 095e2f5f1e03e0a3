#include "pipeline/cidr_set.h"

#include <charconv>
#include <stdexcept>

namespace spikeflow::pipeline {

namespace asio = boost::asio;

namespace {

/// The IPv4 address an IPv4-mapped IPv6 address carries; other addresses unchanged.
asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

bool matches(const CidrSet::Prefix& p, const std::array<uint8_t, 16>& bytes) {
  const int full = p.length / 8, rest = p.length % 8;
  for (int i = 0; i < full; ++i) {
    if (bytes[i] != p.bytes[i]) return false;
  }
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (bytes[full] & mask) == (p.bytes[full] & mask);
}

std::array<uint8_t, 16> bytes_of(const asio::ip::address& a) {
  std::array<uint8_t, 16> b{};
  if (a.is_v4()) {
    const auto v4 = a.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), b.begin());
  } else {
    b = a.to_v6().to_bytes();
  }
  return b;
}

}  // namespace

std::optional<CidrSet::Prefix> CidrSet::parse_prefix(const std::string& text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Prefix> {
    if (error) *error = why;
    return std::nullopt;
  };
  const auto slash = text.find('/');
  const std::string host = text.substr(0, slash);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec || host.empty())
    return fail("not an IPv4 or IPv6 address (expected e.g. 10.1.2.0/24 or ::1/128)");
  if (address.is_v6() && address.to_v6().scope_id() != 0)
    return fail("a scope id (%...) is not allowed");
  Prefix p;
  p.v6 = address.is_v6();
  p.bytes = bytes_of(address);
  const int max_length = p.v6 ? 128 : 32;
  p.length = max_length;
  if (slash != std::string::npos) {
    const std::string len = text.substr(slash + 1);
    int n = -1;
    const auto [end, err] = std::from_chars(len.data(), len.data() + len.size(), n);
    if (len.empty() || err != std::errc() || end != len.data() + len.size() || n < 0 ||
        n > max_length) {
      return fail("prefix length must be an integer in 0.." + std::to_string(max_length));
    }
    p.length = n;
  }
  Prefix masked = p;
  for (int bit = p.length; bit < max_length; ++bit)
    masked.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  if (masked.bytes != p.bytes) {
    return fail("host bits set below the /" + std::to_string(p.length) +
                " prefix (the network is " +
                (p.v6 ? asio::ip::address(asio::ip::address_v6(masked.bytes)).to_string()
                      : asio::ip::address(asio::ip::address_v4({masked.bytes[0], masked.bytes[1],
                                                                masked.bytes[2], masked.bytes[3]}))
                            .to_string()) +
                "/" + std::to_string(p.length) + ")");
  }
  return p;
}

CidrSet CidrSet::parse(const std::vector<std::string>& texts) {
  CidrSet set;
  for (const auto& t : texts) {
    std::string why;
    auto p = parse_prefix(t, &why);
    if (!p) throw std::invalid_argument("'" + t + "': " + why);
    set.prefixes_.push_back(*p);
  }
  return set;
}

CidrSet CidrSet::loopback() { return parse({"127.0.0.0/8", "::1/128"}); }

bool CidrSet::contains(const asio::ip::address& address) const {
  const auto a = unmapped(address);
  const bool v6 = a.is_v6();
  const auto bytes = bytes_of(a);
  for (const auto& p : prefixes_) {
    if (p.v6 == v6 && matches(p, bytes)) return true;
  }
  return false;
}

std::string CidrSet::to_string() const {
  std::string s;
  for (const auto& p : prefixes_) {
    const auto a = p.v6 ? asio::ip::address(asio::ip::address_v6(p.bytes))
                        : asio::ip::address(asio::ip::address_v4(
                              {p.bytes[0], p.bytes[1], p.bytes[2], p.bytes[3]}));
    s += (s.empty() ? "" : ", ") + a.to_string() + "/" + std::to_string(p.length);
  }
  return s;
}

bool is_loopback(const asio::ip::address& address) { return unmapped(address).is_loopback(); }

}  // namespace spikeflow::pipeline
