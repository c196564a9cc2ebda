// Which network addresses a location named by untrusted input may reach. A reference set, Zarr
// metadata or a redirect from a public server must not make us fetch from this machine's own
// services (loopback), a cloud instance's metadata service (link-local 169.254.169.254,
// fd00:ec2::254: credentials) or the unspecified address, and copy the answer into a cache. The
// rule is enforced on the address a connection is about to use (after DNS), so host names and
// redirects cannot get round it; HttpReader applies it.
#pragma once

#include <sys/socket.h>

#include <string>

namespace zp {

// Loopback (127/8, ::1), link-local (169.254/16, fe80::/10), unspecified (0/8, ::), the metadata
// services at fd00:ec2::254 and 100.100.100.200, and each of these as an IPv4-mapped,
// IPv4-compatible or NAT64 (64:ff9b::/96) IPv6 address; and this machine's own interface
// addresses (getifaddrs, read again after 5 s), which reach its services on 0.0.0.0; `own`
// false leaves those out (a proxy's connection is made from the proxy's machine).
bool local_address(const sockaddr* address, bool own = true);
// The classes above for an address written as text ("127.0.0.1", "::1", "[fe80::1]"), not this
// machine's own addresses (what is written as local decides exemptions); false for names.
bool local_address_text(const std::string& host);
// "169.254.169.254" / "::1": an address for messages.
std::string address_text(const sockaddr* address);
// Whether `url`'s host as written says this machine: a local address literal, or "localhost" and
// names under ".localhost" (RFC 6761). A data_uri there makes its references local too.
bool local_host_of(const std::string& url);
// Whether libcurl sends a request for `url` through a proxy from the environment (http_proxy,
// https_proxy / HTTPS_PROXY, all_proxy / ALL_PROXY, less no_proxy / NO_PROXY): then the proxy
// resolves the name and only an address written in the URL can be checked here.
bool proxied(const std::string& url);

// Where `url`'s host resolves here (getaddrinfo), for a request a proxy will resolve itself:
// `resolved` false when it does not resolve here; `local` the first loopback, link-local or
// metadata-service address among its answers ("" when none). The proxy may still resolve the name
// otherwise (its own DNS, or a name whose answers change between lookups).
struct HostAnswer {
  bool resolved = false;
  std::string local;
};
HostAnswer resolve_here(const std::string& url);

}  // namespace zp
