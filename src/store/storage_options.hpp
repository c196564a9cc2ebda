// StorageOptions: how to reach remote objects, in fsspec's spelling so that xarray users recognise
// them (anon, key, secret, token, endpoint_url, region, headers; client_kwargs.endpoint_url and
// client_kwargs.region_name as s3fs takes them). AccessOptions: the options of a source's
// description (`storage_options`) and of a reference set's chunk URLs (`remote_options`), as
// fsspec's reference filesystem splits them. Secrets (key, secret, token, headers) are never
// written to a plan or a store: workers receive them through a SecretsChannel.
// Secrets are scoped: they are sent only to the origins and buckets in `hosts` (url_scope.hpp).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace zp {

struct StorageOptions {
  std::optional<bool> anon;
  std::string key, secret, token;  // S3 credentials; empty: from the environment or a profile
  std::string endpoint_url, region, profile;
  std::map<std::string, std::string> headers;  // sent with HTTP(S) requests in scope
  // Scopes (scope_of: "https://host:443", "s3://bucket") that may receive the secrets; nullopt:
  // every one (options of a local reference set, which the user vouches for).
  std::optional<std::vector<std::string>> hosts;
  // Secrets a data_uri carried: its userinfo (HTTP basic authentication, sent in scope only) and
  // its real URL under its redacted name (redact_location) when a query held a signature.
  std::string basic_user, basic_password;
  std::map<std::string, std::string> locations;
  // Whether a location outside `hosts` and the S3 endpoint (one a reference set or metadata
  // named) may reach a loopback, link-local or unspecified address (address_rule.hpp).
  // AccessOptions::scope_to sets it: false for a source on a public host.
  bool local_addresses = true;
  // Whether any redirect may reach such an address (allow_local_references). Else a redirect is
  // the server's word, not the user's: local_addresses does not cover it, only a redirect to a
  // named origin or from an exempt server written as local (HttpReader::redirect_may_reach_local).
  bool local_redirects = false;

  // Refuses unknown keys and wrong types (Error(Config) naming `config_key`).
  static StorageOptions from_json(const nlohmann::json& j, const std::string& config_key);
  nlohmann::json public_json() const;  // without secrets: safe in plan.json
  nlohmann::json secret_json() const;
  void add_secrets(const nlohmann::json& j);
  // May a request to `location` (a URL or s3:// location) carry the secrets?
  bool secrets_reach(const std::string& location) const;
  bool has_secrets() const;
  // The URL to request for `location`: its real form when it is a redacted name.
  const std::string& real_location(const std::string& location) const;
  bool operator==(const StorageOptions&) const = default;
};

enum class AccessRole { Target, Remote };

struct AccessOptions {
  StorageOptions target;  // the data_uri: its description and, for Zarr/NetCDF, its chunks
  StorageOptions remote;  // a reference set's chunk URLs
  // The cache store's, when it is on S3 (cache_storage_options): handed to workers that write
  // there as the source's are, its secrets through the same channel, never in a plan.
  StorageOptions store;
  bool store_given = false;
  bool remote_given = false;        // remote_options set: else chunk URLs use `target`
  std::string remote_protocol;      // as fsspec's: a protocol for chunk URLs written without one
  bool chunks_remote_role = false;  // kerchunk: the data files are the reference set's targets
  // A reference set fetched from a remote location may name local files only when the user says
  // so (config `allow_local_references`): else a server could copy the user's files into a cache.
  bool allow_local_references = false;

  AccessRole data_role() const {
    return chunks_remote_role && remote_given ? AccessRole::Remote : AccessRole::Target;
  }
  const StorageOptions& of(AccessRole r) const { return r == AccessRole::Remote ? remote : target; }
  bool has_secrets() const {
    return target.has_secrets() || remote.has_secrets() || store.has_secrets();
  }
  nlohmann::json public_json() const;
  static AccessOptions from_public_json(const nlohmann::json& j);
  // Scopes the secrets of both roles to the host (bucket) of a remote `data_uri` unless `hosts`
  // says otherwise; a local data_uri leaves them unscoped. And keeps what a remote data_uri names
  // off local addresses, unless the data_uri (or its S3 endpoint) is itself written as a local
  // address or `localhost`, or allow_local_references.
  void scope_to(const std::string& data_uri);
  // allow_local_references: local files and local addresses for what a remote source names.
  void allow_local(bool allow);
  // Moves the secrets of `data_uri` (userinfo, signed query) into the target options and leaves
  // it redacted: the name plans, stores, logs and messages show.
  void hide_secrets_of(std::string& data_uri);
  // The same for the files a source reads (a reference set's signed chunk URLs): each one with
  // secrets becomes its redacted name ("#2", "#3"... when names collide), its real URL kept for
  // both roles.
  void hide_secrets_of_files(std::vector<std::string>& files);
  // The secrets of both roles as one JSON text, and their merge back: from a text, or from the
  // channel of this run (secrets_channel.hpp).
  std::string secrets_text() const;
  // The options and their secrets as one text, for a child or an MPI rank of this run (a pipe or
  // MPI, never a file or the environment), and back; malformed text is Error(Internal).
  std::string transfer_text() const;
  static AccessOptions from_transfer_text(const std::string& text);
  void add_secrets_text(const std::string& text);
  void add_secrets_from_environment();
  // This run's options and secrets as the coordinator handed them (transfer_text: the secrets
  // channel, a dask task's argument): where secrets may go is the coordinator's word, never what
  // a store's plan.json says. Keeps this access's chunks_remote_role (the plan's reading of the
  // source). Unchanged when `text` is empty (a run without secrets).
  void take_handed(const std::string& text);
  bool operator==(const AccessOptions&) const = default;
};

}  // namespace zp
