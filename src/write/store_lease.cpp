#include "write/store_lease.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "write/store_state.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

std::string lease_key() {
  return std::string(StoreState::kFolder) + "/lease.json";
}

std::string lease_text(const std::string& holder, double expires) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return json{{"holder", holder}, {"host", host}, {"pid", getpid()}, {"expires", expires}}.dump();
}

json parse_lease(const std::string& text) {
  if (json_too_deep(text)) return json::object();
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("expires") || !j["expires"].is_number()) return json::object();
  return j;
}

std::optional<json> read_lease(const Writable& store) {
  const auto text = store.get_at_most(lease_key(), uint64_t{64} << 10);  // a lease is ~150 bytes
  if (!text) return std::nullopt;
  return parse_lease(*text);
}

std::string new_holder() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}{:08x}", rd(), rd(), rd());
}

// Error(Store): a live lease of another run is there.
[[noreturn]] void refuse_held(const Writable& store, const json& held, double now) {
  throw Error::store(
      store.root(),
      fmt::format("another run holds its lease (host {}, pid {}) for {:.0f} s "
                  "more; it is renewed while that run lives",
                  held.value("host", "?"), held.value("pid", 0), held.value("expires", 0.0) - now));
}

}  // namespace

std::unique_ptr<StoreLease> StoreLease::acquire(const Writable& store, double seconds, double now) {
  if (now < 0) now = now_seconds();
  const std::string holder = new_holder();
  const std::string text = lease_text(holder, now + seconds);
  for (int tries = 0; tries < 3; ++tries) {
    if (store.put_if_absent(lease_key(), text)) {
      const auto mine = store.get_tagged(lease_key());
      if (mine && mine->value == text)
        return std::unique_ptr<StoreLease>(new StoreLease(store, holder, seconds, mine->tag));
      continue;  // replaced at once (a server without If-None-Match): looked at again
    }
    const auto held = store.get_tagged(lease_key());
    if (!held) continue;  // released meanwhile: try again
    const json lease = parse_lease(held->value);
    if (lease.value("expires", 0.0) > now) refuse_held(store, lease, now);
    // Expired: its holder is gone. Replaced only while it is still that expired version, so of
    // two runs taking it over one does; the other finds the winner's lease next time round.
    if (auto tag = store.put_if_match(lease_key(), text, held->tag))
      return std::unique_ptr<StoreLease>(new StoreLease(store, holder, seconds, *tag));
  }
  throw Error::store(store.root(), "cannot take its lease: other runs keep taking it");
}

double StoreLease::configured_seconds() {
  const char* text = std::getenv("ZP_S3_LEASE_SECONDS");
  if (!text || !*text) return kSeconds;
  char* end = nullptr;
  const double s = std::strtod(text, &end);
  if (*end || !(s >= 1 && s <= 86400))
    throw Error::config("ZP_S3_LEASE_SECONDS", "must be seconds between 1 and 86400");
  return s;
}

void StoreLease::verify() const {
  const auto held = read_lease(store_);
  if (!held || held->value("holder", "") != holder_)
    throw Error::store(store_.root(),
                       "this run's lease expired and another run took the store over: stopping");
}

void StoreLease::renew(double now) {
  if (now < 0) now = now_seconds();
  verify();  // a server that ignores If-Match would let the put below replace a taker's lease
  auto tag = store_.put_if_match(lease_key(), lease_text(holder_, now + seconds_), tag_);
  if (!tag)
    throw Error::store(store_.root(),
                       "this run's lease expired and another run took the store over: stopping");
  tag_ = std::move(*tag);
}

StoreLease::~StoreLease() {
  try {
    const auto held = read_lease(store_);
    if (held && held->value("holder", "") == holder_) store_.remove(lease_key());
  } catch (...) {  // an unreachable store: the lease expires by itself
  }
}

}  // namespace zp
