// StorageOptions: how to reach remote objects, in fsspec's spelling so that xarray users recognise
// them (anon, key, secret, token, endpoint_url, region, headers; client_kwargs.endpoint_url and
// client_kwargs.region_name as s3fs takes them). AccessOptions: the options of a source's
// description (`storage_options`) and of a reference set's chunk URLs (`remote_options`), as
// fsspec's reference filesystem splits them. Secrets (key, secret, token, headers) are never
// written to a plan or a store: workers receive them through their environment (kSecretsEnv).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace zp {

struct StorageOptions {
  std::optional<bool> anon;
  std::string key, secret, token;  // S3 credentials; empty: from the environment or a profile
  std::string endpoint_url, region, profile;
  std::map<std::string, std::string> headers;  // sent with every HTTP(S) request

  // Refuses unknown keys and wrong types (Error(Config) naming `config_key`).
  static StorageOptions from_json(const nlohmann::json& j, const std::string& config_key);
  nlohmann::json public_json() const;  // without secrets: safe in plan.json
  nlohmann::json secret_json() const;
  void add_secrets(const nlohmann::json& j);
  bool operator==(const StorageOptions&) const = default;
};

enum class AccessRole { Target, Remote };

struct AccessOptions {
  StorageOptions target;        // the data_uri: its description and, for Zarr/NetCDF, its chunks
  StorageOptions remote;        // a reference set's chunk URLs
  bool remote_given = false;    // remote_options set: else chunk URLs use `target`
  std::string remote_protocol;  // as fsspec's: a protocol for chunk URLs written without one
  bool chunks_remote_role = false;  // kerchunk: the data files are the reference set's targets
  // A reference set fetched from a remote location may name local files only when the user says
  // so (config `allow_local_references`): else a server could copy the user's files into a cache.
  bool allow_local_references = false;

  AccessRole data_role() const {
    return chunks_remote_role && remote_given ? AccessRole::Remote : AccessRole::Target;
  }
  const StorageOptions& of(AccessRole r) const { return r == AccessRole::Remote ? remote : target; }
  nlohmann::json public_json() const;
  static AccessOptions from_public_json(const nlohmann::json& j);
  // The secrets of both roles as one JSON text, and their merge back (from kSecretsEnv).
  std::string secrets_text() const;
  void add_secrets_from_environment();
  bool operator==(const AccessOptions&) const = default;
};

// The environment variable through which a coordinator hands its secrets to its workers.
inline constexpr const char* kSecretsEnv = "ZP_STORAGE_SECRETS";

}  // namespace zp
