#include "store/address_rule.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace zp {

namespace {

bool local_v4(const unsigned char* a) {
  return a[0] == 127 || a[0] == 0 || (a[0] == 169 && a[1] == 254) ||
         (a[0] == 100 && a[1] == 100 && a[2] == 100 && a[3] == 200);  // Alibaba's metadata
}

bool local_v6(const unsigned char* a) {
  static const unsigned char ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                        0,    0, 0,    0,    0, 0, 0x02, 0x54};
  if (std::memcmp(a, ec2, 16) == 0) return true;
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;  // fe80::/10
  static const unsigned char zero[12] = {};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  // ::a.b.c.d (:: and ::1 among them), ::ffff:a.b.c.d and 64:ff9b::a.b.c.d reach an IPv4 address.
  if (std::memcmp(a, zero, 12) == 0 || std::memcmp(a, mapped, 12) == 0 ||
      std::memcmp(a, nat64, 12) == 0)
    return local_v4(a + 12);
  return false;
}

// This machine's own interface addresses (its LAN address reaches every service listening on
// 0.0.0.0), as 16 bytes (IPv4 as ::ffff:a.b.c.d). Read with getifaddrs and kept for a few seconds:
// a connection is checked against them, and addresses come and go (DHCP, VPNs, containers).
using Address16 = std::array<unsigned char, 16>;

Address16 mapped_v4(const unsigned char* a) {
  Address16 out{};
  out[10] = out[11] = 0xff;
  std::memcpy(out.data() + 12, a, 4);
  return out;
}

std::vector<Address16> read_own_addresses() {
  std::vector<Address16> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET)
      out.push_back(mapped_v4(reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr)));
    if (i->ifa_addr->sa_family == AF_INET6) {
      Address16 a{};
      std::memcpy(a.data(), reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr.s6_addr,
                  16);
      out.push_back(a);
    }
  }
  freeifaddrs(list);
  return out;
}

bool own_address(const Address16& a) {
  static std::mutex mutex;
  static std::vector<Address16> own;
  static std::chrono::steady_clock::time_point read_at;
  static bool read = false;
  std::lock_guard lock(mutex);
  const auto now = std::chrono::steady_clock::now();
  if (!read || now - read_at > std::chrono::seconds(5)) {
    own = read_own_addresses();
    read_at = now;
    read = true;
  }
  for (const auto& o : own)
    if (o == a) return true;
  return false;
}

// An IPv6 address that reaches an IPv4 one (::a.b.c.d, ::ffff:a.b.c.d, 64:ff9b::a.b.c.d) is
// compared as that IPv4 address.
bool own_v6(const unsigned char* a) {
  static const unsigned char zero[12] = {};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a, zero, 12) == 0 || std::memcmp(a, mapped, 12) == 0 ||
      std::memcmp(a, nat64, 12) == 0)
    return own_address(mapped_v4(a + 12));
  Address16 v6{};
  std::memcpy(v6.data(), a, 16);
  return own_address(v6);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

// The scheme and host of `url` (host without brackets), lower case; false when not a URL.
bool scheme_and_host(const std::string& url, std::string& scheme, std::string& host) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u ||
      curl_url_set(u.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return false;
  char* s = nullptr;
  char* h = nullptr;
  const bool ok = curl_url_get(u.get(), CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
                  curl_url_get(u.get(), CURLUPART_HOST, &h, 0) == CURLUE_OK;
  if (ok) {
    scheme = lower(s);
    host = lower(h);
    if (host.size() > 1 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
  }
  curl_free(s);
  curl_free(h);
  return ok;
}

std::string env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

// no_proxy's list (comma or space separated): "*", or names matched whole or as a domain suffix.
bool no_proxy_matches(const std::string& list, const std::string& host) {
  std::size_t at = 0;
  while (at < list.size()) {
    const std::size_t end = std::min(list.find_first_of(", ", at), list.size());
    std::string entry = lower(list.substr(at, end - at));
    at = end + 1;
    while (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
    if (entry.empty()) continue;
    if (entry == "*" || entry == host) return true;
    if (host.size() > entry.size() &&
        host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
        host[host.size() - entry.size() - 1] == '.')
      return true;
  }
  return false;
}

}  // namespace

bool local_address(const sockaddr* address, bool own) {
  if (!address) return false;
  if (address->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
    return local_v4(a) || (own && own_address(mapped_v4(a)));
  }
  if (address->sa_family == AF_INET6) {
    const unsigned char* a = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
    return local_v6(a) || (own && own_v6(a));
  }
  return false;
}

bool local_address_text(const std::string& host) {
  std::string h = host;
  if (h.size() > 1 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  h = h.substr(0, h.find('%'));  // a zone id (fe80::1%eth0)
  unsigned char buf[16];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1) return local_v4(buf);
  if (inet_pton(AF_INET6, h.c_str(), buf) == 1) return local_v6(buf);
  return false;
}

std::string address_text(const sockaddr* address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address && address->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, buf, sizeof buf);
  else if (address && address->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, buf,
              sizeof buf);
  return buf;
}

bool local_host_of(const std::string& url) {
  std::string scheme, host;
  if (!scheme_and_host(url, scheme, host)) return false;
  while (!host.empty() && host.back() == '.') host.pop_back();
  const std::string tail = ".localhost";
  return host == "localhost" ||
         (host.size() > tail.size() &&
          host.compare(host.size() - tail.size(), tail.size(), tail) == 0) ||
         local_address_text(host);
}

bool proxied(const std::string& url) {
  std::string scheme, host;
  if (!scheme_and_host(url, scheme, host)) return false;
  const std::string no_proxy = !env("no_proxy").empty() ? env("no_proxy") : env("NO_PROXY");
  if (no_proxy_matches(no_proxy, host)) return false;
  // As libcurl: http_proxy only in lower case (HTTP_PROXY may come from a CGI request's header).
  std::string proxy = env(scheme + "_proxy");
  if (proxy.empty() && scheme != "http") proxy = env(scheme == "https" ? "HTTPS_PROXY" : "");
  if (proxy.empty()) proxy = !env("all_proxy").empty() ? env("all_proxy") : env("ALL_PROXY");
  return !proxy.empty();
}

HostAnswer resolve_here(const std::string& url) {
  HostAnswer out;
  std::string scheme, host;
  if (!scheme_and_host(url, scheme, host)) return out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) return out;
  out.resolved = true;
  for (const addrinfo* a = found; a && out.local.empty(); a = a->ai_next)
    // Not this machine's own addresses: behind a proxy the proxy connects, from its machine.
    if (local_address(a->ai_addr, false)) out.local = address_text(a->ai_addr);
  ::freeaddrinfo(found);
  return out;
}

}  // namespace zp
