#include "store/storage_options.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "store/address_rule.hpp"
#include "store/http_reader.hpp"
#include "store/secrets_channel.hpp"
#include "store/url_scope.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

std::string text(const json& v, const std::string& key) {
  if (!v.is_string()) throw Error::config(key, "must be a string");
  return v.get<std::string>();
}

// 'h' for an http(s) URL, else 0.
char backend_of_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 ? 'h' : 0;
}

std::vector<std::string> scopes(const json& v, const std::string& key) {
  if (!v.is_array()) throw Error::config(key, "must be a list of URLs (https://host, s3://bucket)");
  std::vector<std::string> out;
  for (const auto& h : v) {
    const std::string s = scope_of(text(h, key));
    if (s.empty())
      throw Error::config(key, "'" + h.get<std::string>() + "' is not an http(s):// or s3:// URL");
    out.push_back(s);
  }
  return out;
}

}  // namespace

StorageOptions StorageOptions::from_json(const json& j, const std::string& config_key) {
  StorageOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) throw Error::config(config_key, "must be a map of options");
  for (const auto& [k, v] : j.items()) {
    const std::string key = config_key + "." + k;
    if (k == "anon") {
      if (!v.is_boolean()) throw Error::config(key, "must be true or false");
      o.anon = v.get<bool>();
    } else if (k == "key") {
      o.key = text(v, key);
    } else if (k == "secret") {
      o.secret = text(v, key);
    } else if (k == "token") {
      o.token = text(v, key);
    } else if (k == "endpoint_url") {
      o.endpoint_url = text(v, key);
    } else if (k == "region" || k == "region_name") {
      o.region = text(v, key);
    } else if (k == "profile") {
      o.profile = text(v, key);
    } else if (k == "headers") {
      if (!v.is_object()) throw Error::config(key, "must be a map of header names to values");
      for (const auto& [h, hv] : v.items()) o.headers[h] = text(hv, key + "." + h);
    } else if (k == "hosts") {
      o.hosts = scopes(v, key);
    } else if (k == "client_kwargs") {
      // s3fs passes these to botocore's client: the two that matter here.
      if (!v.is_object()) throw Error::config(key, "must be a map");
      for (const auto& [ck, cv] : v.items()) {
        if (ck == "endpoint_url")
          o.endpoint_url = text(cv, key + "." + ck);
        else if (ck == "region_name")
          o.region = text(cv, key + "." + ck);
        else
          throw Error::config(key + "." + ck, "not supported (endpoint_url, region_name)");
      }
    } else {
      throw Error::config(key,
                          "unknown option (anon, key, secret, token, endpoint_url, region, "
                          "profile, headers, hosts, client_kwargs)");
    }
  }
  if (!o.key.empty() != !o.secret.empty())
    throw Error::config(config_key, "key and secret must be given together");
  if (o.anon.value_or(false) && !o.key.empty())
    throw Error::config(config_key, "anon: true and a key cannot be used together");
  return o;
}

json StorageOptions::public_json() const {
  json j = json::object();
  if (anon) j["anon"] = *anon;
  if (!endpoint_url.empty()) j["endpoint_url"] = endpoint_url;
  if (!region.empty()) j["region"] = region;
  if (!profile.empty()) j["profile"] = profile;
  if (hosts) j["hosts"] = *hosts;
  return j;
}

json StorageOptions::secret_json() const {
  json j = json::object();
  if (!key.empty()) j["key"] = key;
  if (!secret.empty()) j["secret"] = secret;
  if (!token.empty()) j["token"] = token;
  if (!headers.empty()) j["headers"] = headers;
  if (!basic_user.empty() || !basic_password.empty())
    j["basic"] = {{"user", basic_user}, {"password", basic_password}};
  if (!locations.empty()) j["locations"] = locations;
  return j;
}

void StorageOptions::add_secrets(const json& j) {
  if (!j.is_object()) return;
  key = j.value("key", key);
  secret = j.value("secret", secret);
  token = j.value("token", token);
  if (j.contains("headers") && j["headers"].is_object())
    headers = j["headers"].get<std::map<std::string, std::string>>();
  if (j.contains("basic") && j["basic"].is_object()) {
    basic_user = j["basic"].value("user", "");
    basic_password = j["basic"].value("password", "");
  }
  if (j.contains("locations") && j["locations"].is_object())
    locations = j["locations"].get<std::map<std::string, std::string>>();
}

bool StorageOptions::has_secrets() const {
  return !key.empty() || !secret.empty() || !token.empty() || !headers.empty() ||
         !basic_user.empty() || !basic_password.empty() || !locations.empty();
}

const std::string& StorageOptions::real_location(const std::string& location) const {
  const auto it = locations.find(location);
  return it == locations.end() ? location : it->second;
}

bool StorageOptions::secrets_reach(const std::string& location) const {
  if (!hosts) return true;
  const std::string s = scope_of(location);
  return !s.empty() && std::find(hosts->begin(), hosts->end(), s) != hosts->end();
}

json AccessOptions::public_json() const {
  json j = {{"target", target.public_json()}, {"chunks_remote_role", chunks_remote_role}};
  if (remote_given) j["remote"] = remote.public_json();
  if (!remote_protocol.empty()) j["remote_protocol"] = remote_protocol;
  if (allow_local_references) j["allow_local_references"] = true;
  if (!target.local_addresses || !remote.local_addresses) j["local_addresses"] = false;
  if (store_given) j["store"] = store.public_json();
  return j;
}

AccessOptions AccessOptions::from_public_json(const json& j) {
  AccessOptions a;
  if (!j.is_object()) return a;
  a.target = StorageOptions::from_json(j.value("target", json::object()), "plan access.target");
  if (j.contains("remote")) {
    a.remote_given = true;
    a.remote = StorageOptions::from_json(j["remote"], "plan access.remote");
  }
  a.remote_protocol = j.value("remote_protocol", "");
  a.chunks_remote_role = j.value("chunks_remote_role", false);
  a.allow_local_references = j.value("allow_local_references", false);
  a.target.local_redirects = a.remote.local_redirects = a.allow_local_references;
  const auto local = j.find("local_addresses");
  a.target.local_addresses = a.remote.local_addresses =
      local == j.end() || !local->is_boolean() || local->get<bool>();
  if (j.contains("store")) {
    a.store_given = true;
    a.store = StorageOptions::from_json(j["store"], "plan access.store");
  }
  return a;
}

void AccessOptions::scope_to(const std::string& data_uri) {
  const std::string s = scope_of(data_uri);
  if (s.empty()) return;
  if (!target.hosts) target.hosts = std::vector<std::string>{s};
  if (!remote.hosts) remote.hosts = std::vector<std::string>{s};
  const std::string home =
      s.rfind("s3://", 0) == 0 ? S3Settings::resolve(target).endpoint : data_uri;
  target.local_addresses = remote.local_addresses = allow_local_references || local_host_of(home);
}

void AccessOptions::allow_local(bool allow) {
  allow_local_references = allow;
  target.local_redirects = remote.local_redirects = allow;
  if (allow) target.local_addresses = remote.local_addresses = true;
}

void AccessOptions::hide_secrets_of(std::string& data_uri) {
  if (backend_of_url(data_uri) != 'h') return;
  std::string user, password;
  const std::string real = strip_userinfo(data_uri, user, password);
  if (!user.empty() || !password.empty()) {
    target.basic_user = user;
    target.basic_password = password;
  }
  const std::string shown = redact_location(real);
  if (shown != real) target.locations[shown] = real;
  data_uri = shown;
}

void AccessOptions::hide_secrets_of_files(std::vector<std::string>& files) {
  for (auto& f : files) {
    if (backend_of_url(f) != 'h') continue;
    std::string shown = redact_location(f);
    if (shown == f) continue;
    for (int n = 2; target.locations.count(shown) && target.locations[shown] != f; ++n)
      shown = redact_location(f) + "#" + std::to_string(n);
    target.locations[shown] = f;
    remote.locations[shown] = f;
    f = shown;
  }
}

std::string AccessOptions::transfer_text() const {
  return json{{"access", public_json()}, {"secrets", secrets_text()}}.dump();
}

AccessOptions AccessOptions::from_transfer_text(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("access") || !j.contains("secrets") ||
      !j["secrets"].is_string())
    throw Error::internal("malformed access options handed to this process");
  AccessOptions a = from_public_json(j["access"]);
  a.add_secrets_text(j["secrets"].get<std::string>());
  return a;
}

std::string AccessOptions::secrets_text() const {
  return json{{"target", target.secret_json()},
              {"remote", remote.secret_json()},
              {"store", store.secret_json()}}
      .dump();
}

void AccessOptions::add_secrets_text(const std::string& text) {
  if (text.empty()) return;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return;
  target.add_secrets(j.value("target", json::object()));
  remote.add_secrets(j.value("remote", json::object()));
  store.add_secrets(j.value("store", json::object()));
  guard_secrets(*this);
}

void AccessOptions::add_secrets_from_environment() {
  take_handed(secrets_from_channel());
}

void AccessOptions::take_handed(const std::string& text) {
  if (text.empty()) return;
  const bool role = chunks_remote_role;
  *this = from_transfer_text(text);
  chunks_remote_role = role;
  guard_secrets(*this);
}

}  // namespace zp
