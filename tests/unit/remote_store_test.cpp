// The store table and the remote backends' pure parts: which backend a location goes to, how
// reference URLs resolve (as fsspec resolves them), S3 URL mapping and the AWS settings chain,
// storage options in fsspec's spelling with secrets kept out of the public form.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "source/kerchunk_source.hpp"
#include "store/http_reader.hpp"
#include "store/store_table.hpp"

namespace zp {
namespace {

TEST(StoreTable, ChoosesTheBackendFromTheScheme) {
  EXPECT_EQ(backend_of("/data/a.nc"), Backend::File);
  EXPECT_EQ(backend_of("file:///data/a.nc"), Backend::File);
  EXPECT_EQ(backend_of("relative/a.nc"), Backend::File);
  EXPECT_EQ(backend_of("http://h/a.nc"), Backend::Http);
  EXPECT_EQ(backend_of("https://h/a.nc"), Backend::Http);
  EXPECT_EQ(backend_of("s3://b/a.nc"), Backend::S3);
  EXPECT_THROW(backend_of("gs://b/a.nc"), Error);
  EXPECT_EQ(backend_of("odd/name://x"), Backend::File);  // "://" after a '/' is a path
  // A local-only access never opens a connection.
  SourceAccess local = SourceAccess::local_only();
  EXPECT_THROW(local.reader("http://127.0.0.1:1/x"), Error);
}

TEST(StoreTable, ResolvesReferenceUrlsAsFsspec) {
  EXPECT_EQ(resolve_location("a.nc", "https://h/dir/", ""), "https://h/dir/a.nc");
  EXPECT_EQ(resolve_location("../b/a.nc", "https://h/dir/sub/", ""), "https://h/dir/b/a.nc");
  EXPECT_EQ(resolve_location("/top/a.nc", "https://h/dir/", ""), "https://h/top/a.nc");
  EXPECT_EQ(resolve_location("s3://b/k.nc", "https://h/dir/", ""), "s3://b/k.nc");
  EXPECT_EQ(resolve_location("bucket/k.nc", "/local/", "s3"), "s3://bucket/k.nc");
  EXPECT_EQ(resolve_location("file:///x/a.nc", "https://h/", ""), "/x/a.nc");
  EXPECT_EQ(resolve_location("a.nc", "/local/dir/", ""), "/local/dir/a.nc");
  EXPECT_EQ(parent_location("https://h/dir/refs.json"), "https://h/dir/");
  EXPECT_EQ(parent_location("s3://b/refs.json"), "s3://b/");
  EXPECT_EQ(join_location("s3://b/x.zarr", "t/.zarray"), "s3://b/x.zarr/t/.zarray");
}

TEST(StoreTable, RelativeChunkPathsOfARemoteReferenceSetStayRemote) {
  const ReferenceSet refs = parse_kerchunk(
      R"({"version": 1, "refs": {"a/0": ["data/f.nc", 10, 20], "a/1": ["s3://b/g.nc", 0, 4]}})",
      "https://h/refs/", "https://h/refs/r.json");
  EXPECT_EQ(refs.at("a/0").path, "https://h/refs/data/f.nc");
  EXPECT_EQ(refs.at("a/1").path, "s3://b/g.nc");
}

TEST(S3, MapsUrlsPathStyleOnCustomEndpointsAndVirtualHostedOnAws) {
  StorageOptions o;
  o.anon = true;
  o.region = "eu-west-2";
  S3Settings aws = S3Settings::resolve(o);
  EXPECT_EQ(aws.url_of("s3://bucket/a b/c+d.nc"),
            "https://bucket.s3.eu-west-2.amazonaws.com/a%20b/c%2Bd.nc");
  EXPECT_TRUE(aws.key.empty());  // anon: unsigned
  o.endpoint_url = "http://127.0.0.1:9000/";
  S3Settings local = S3Settings::resolve(o);
  EXPECT_EQ(local.url_of("s3://bucket/k/x.json"), "http://127.0.0.1:9000/bucket/k/x.json");
  EXPECT_THROW(local.url_of("s3:///nokey"), Error);
}

TEST(S3, TakesCredentialsFromOptionsEnvironmentOrProfile) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("zp_aws_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "credentials") << "[default]\naws_access_key_id = DEF\naws_secret_access_key = "
                                        "defsecret\n[other]\naws_access_key_id=OTH\n"
                                        "aws_secret_access_key=othsecret\n";
  std::ofstream(dir / "config") << "[profile other]\nregion = ap-south-1\n";
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_REGION");
  ::unsetenv("AWS_DEFAULT_REGION");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").c_str(), 1);
  ::setenv("AWS_CONFIG_FILE", (dir / "config").c_str(), 1);
  StorageOptions o;
  EXPECT_EQ(S3Settings::resolve(o).key, "DEF");
  EXPECT_EQ(S3Settings::resolve(o).region, "us-east-1");
  ::setenv("AWS_PROFILE", "other", 1);
  EXPECT_EQ(S3Settings::resolve(o).key, "OTH");
  EXPECT_EQ(S3Settings::resolve(o).region, "ap-south-1");
  ::setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  EXPECT_EQ(S3Settings::resolve(o).key, "ENVKEY");
  o.key = "OPTKEY";
  o.secret = "optsecret";
  EXPECT_EQ(S3Settings::resolve(o).key, "OPTKEY");
  for (const char* v : {"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"})
    ::unsetenv(v);
  fs::remove_all(dir);
}

TEST(StorageOptions, FsspecSpellingAndSecretsKeptApart) {
  const auto o = StorageOptions::from_json(
      {{"key", "K"}, {"secret", "S"}, {"client_kwargs", {{"endpoint_url", "http://e"}}},
       {"headers", {{"Authorization", "Bearer t"}}}},
      "storage_options");
  EXPECT_EQ(o.endpoint_url, "http://e");
  EXPECT_EQ(o.public_json().dump().find("K\""), std::string::npos);
  EXPECT_EQ(o.public_json().dump().find("Bearer"), std::string::npos);
  EXPECT_NE(o.secret_json().dump().find("Bearer"), std::string::npos);
  EXPECT_THROW(StorageOptions::from_json({{"kee", "x"}}, "storage_options"), Error);
  EXPECT_THROW(StorageOptions::from_json({{"key", "x"}}, "storage_options"), Error);  // no secret
  EXPECT_THROW(StorageOptions::from_json({{"anon", "yes"}}, "storage_options"), Error);
  AccessOptions a;
  a.target = o;
  ::setenv(kSecretsEnv, a.secrets_text().c_str(), 1);
  AccessOptions b = AccessOptions::from_public_json(a.public_json());
  EXPECT_TRUE(b.target.key.empty());
  b.add_secrets_from_environment();
  EXPECT_EQ(b.target, a.target);
  ::unsetenv(kSecretsEnv);
}

}  // namespace
}  // namespace zp
