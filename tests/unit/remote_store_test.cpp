// The store table and the remote backends' pure parts: which backend a location goes to, how
// reference URLs resolve (as fsspec resolves them), S3 URL mapping and the AWS settings chain,
// storage options in fsspec's spelling with secrets kept out of the public form.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "source/kerchunk/kerchunk_source.hpp"
#include "store/address_rule.hpp"
#include "store/http_reader.hpp"
#include "store/secrets_channel.hpp"
#include "store/store_table.hpp"
#include "store/url_scope.hpp"

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
  EXPECT_EQ(refs.get("a/0")->path, "https://h/refs/data/f.nc");
  EXPECT_EQ(refs.get("a/1")->path, "s3://b/g.nc");
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
  std::ofstream(dir / "credentials")
      << "[default]\naws_access_key_id = DEF\naws_secret_access_key = "
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
  const auto o = StorageOptions::from_json({{"key", "K"},
                                            {"secret", "S"},
                                            {"client_kwargs", {{"endpoint_url", "http://e"}}},
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
  AccessOptions b = AccessOptions::from_public_json(a.public_json());
  EXPECT_TRUE(b.target.key.empty());
  {
    const SecretsChannel channel(a, ::testing::TempDir());
    ASSERT_FALSE(channel.path().empty());
    EXPECT_EQ(std::filesystem::status(channel.path()).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    b.add_secrets_from_environment();
    EXPECT_EQ(b.target, a.target);
  }
  // The channel ends with the run: no file, no variable.
  EXPECT_EQ(std::getenv(kSecretsFileEnv), nullptr);
  EXPECT_EQ(std::getenv("ZP_STORAGE_SECRETS"), nullptr);
}

// Issue 31: workers that write to an S3 cache store get its options and secrets as the source's:
// the public part in the plan, the secrets only through the channel (a run whose only secrets are
// the store's still opens one).
TEST(StorageOptions, TheCacheStoresSecretsReachWorkersOnlyThroughTheChannel) {
  AccessOptions a;
  a.store = StorageOptions::from_json(
      {{"key", "KEYID9"}, {"secret", "SEKRIT9"}, {"endpoint_url", "http://e"}},
      "cache_storage_options");
  a.store_given = true;
  const std::string plan_part = a.public_json().dump();
  EXPECT_EQ(plan_part.find("SEKRIT9"), std::string::npos);
  EXPECT_EQ(plan_part.find("KEYID9"), std::string::npos);
  AccessOptions w = AccessOptions::from_public_json(a.public_json());
  EXPECT_TRUE(w.store_given);
  EXPECT_EQ(w.store.endpoint_url, "http://e");
  EXPECT_TRUE(w.store.secret.empty());
  {
    const SecretsChannel channel(a, ::testing::TempDir());
    ASSERT_FALSE(channel.path().empty());
    w.add_secrets_from_environment();
    EXPECT_EQ(w.store, a.store);
  }
  EXPECT_EQ(std::getenv(kSecretsFileEnv), nullptr);
}

TEST(SecretScope, OriginsAndBuckets) {
  EXPECT_EQ(origin_of("https://u:p@Host.Example/a?b=1"), "https://host.example:443");
  EXPECT_EQ(origin_of("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080");
  EXPECT_EQ(origin_of("http://localhost/x"), "http://localhost:80");
  EXPECT_EQ(origin_of("/local/file.nc"), "");
  EXPECT_EQ(scope_of("s3://bucket/key/x.nc"), "s3://bucket");
  EXPECT_EQ(scope_of("s3://bucket"), "s3://bucket");
}

TEST(SecretScope, SecretsReachOnlyTheDataUrisHostUnlessHostsSayOtherwise) {
  AccessOptions a;
  a.target = StorageOptions::from_json({{"headers", {{"X-Api-Key", "k"}}}}, "storage_options");
  a.remote_given = true;
  a.scope_to("https://a.example/refs.json");
  EXPECT_TRUE(a.target.secrets_reach("https://a.example/data/x.nc"));
  EXPECT_FALSE(a.target.secrets_reach("https://b.example/x.nc"));
  EXPECT_FALSE(a.target.secrets_reach("http://a.example/x.nc"));        // another scheme
  EXPECT_FALSE(a.target.secrets_reach("https://a.example:8443/x.nc"));  // another port
  EXPECT_FALSE(a.remote.secrets_reach("https://b.example/x.nc"));
  // The scope survives the plan (workers) and `hosts` widens it.
  const AccessOptions p = AccessOptions::from_public_json(a.public_json());
  EXPECT_FALSE(p.target.secrets_reach("https://b.example/x.nc"));
  AccessOptions w;
  w.target = StorageOptions::from_json({{"hosts", {"https://b.example", "s3://data"}}}, "x");
  w.scope_to("https://a.example/refs.json");
  EXPECT_TRUE(w.target.secrets_reach("https://b.example/x.nc"));
  EXPECT_TRUE(w.target.secrets_reach("s3://data/x.nc"));
  EXPECT_FALSE(w.target.secrets_reach("https://a.example/refs.json"));
  EXPECT_THROW(StorageOptions::from_json({{"hosts", {"ftp://x"}}}, "x"), Error);
  // S3: the data_uri's bucket only.
  AccessOptions s;
  s.scope_to("s3://mine/refs.json");
  EXPECT_TRUE(s.target.secrets_reach("s3://mine/a.nc"));
  EXPECT_FALSE(s.target.secrets_reach("s3://theirs/a.nc"));
  // A local reference set is the user's: its options reach every host it names.
  AccessOptions l;
  l.scope_to("/home/u/refs.json");
  EXPECT_TRUE(l.target.secrets_reach("https://any.example/x.nc"));
}

TEST(AddressRule, LoopbackLinkLocalUnspecifiedAndMetadataAddressesAreLocal) {
  for (const char* a :
       {"127.0.0.1", "127.255.0.9", "0.0.0.0", "169.254.169.254", "169.254.0.1", "100.100.100.200",
        "::1", "::", "[::1]", "fe80::1", "fe80::1%eth0", "febf::1", "fd00:ec2::254",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a9fe:a9fe"})
    EXPECT_TRUE(local_address_text(a)) << a;
  // Private networks are other machines (a site's own servers), not this one or its cloud's.
  for (const char* a : {"10.231.0.1", "192.168.1.1", "172.16.0.1", "8.8.8.8", "169.253.0.1",
                        "fec0::1", "fd00:ec2::253", "2001:db8::1", "::ffff:10.0.0.1",
                        "metadata.google.internal", "localhost", ""})
    EXPECT_FALSE(local_address_text(a)) << a;
  EXPECT_TRUE(local_host_of("http://localhost:8080/x"));
  EXPECT_TRUE(local_host_of("http://a.b.localhost./x"));
  EXPECT_TRUE(local_host_of("https://[::1]/x"));
  EXPECT_TRUE(local_host_of("http://169.254.169.254/latest/meta-data/"));
  EXPECT_FALSE(local_host_of("http://localhost.example/x"));
  EXPECT_FALSE(local_host_of("https://data.example.org/refs.json"));
  EXPECT_FALSE(local_host_of("/home/u/refs.json"));
}

TEST(AddressRule, ProxiesFromTheEnvironmentAsLibcurlReadsThem) {
  const char* names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                         "ALL_PROXY",  "no_proxy",    "NO_PROXY",    "HTTP_PROXY"};
  for (const char* n : names) unsetenv(n);
  EXPECT_FALSE(proxied("http://a.example/x"));
  setenv("HTTP_PROXY", "http://p:3128", 1);  // ignored in upper case for http, as libcurl does
  EXPECT_FALSE(proxied("http://a.example/x"));
  setenv("https_proxy", "http://p:3128", 1);
  EXPECT_TRUE(proxied("https://a.example/x"));
  EXPECT_FALSE(proxied("http://a.example/x"));
  setenv("no_proxy", "localhost,.example,169.254.169.254", 1);
  EXPECT_FALSE(proxied("https://b.a.example/x"));
  EXPECT_FALSE(proxied("https://169.254.169.254/x"));
  EXPECT_TRUE(proxied("https://example.org/x"));
  for (const char* n : names) unsetenv(n);
}

TEST(AddressRule, ARemoteSourceKeepsWhatItNamesOffLocalAddresses) {
  AccessOptions pub;
  pub.scope_to("https://data.example.org/refs.json");
  EXPECT_FALSE(pub.target.local_addresses);
  EXPECT_FALSE(pub.remote.local_addresses);
  // Workers read the rule from the plan (or from what the coordinator hands them).
  const AccessOptions p = AccessOptions::from_public_json(pub.public_json());
  EXPECT_FALSE(p.target.local_addresses);
  EXPECT_FALSE(AccessOptions::from_transfer_text(pub.transfer_text()).remote.local_addresses);
  pub.allow_local(true);  // allow_local_references, read after the data_uri
  EXPECT_TRUE(pub.target.local_addresses && pub.remote.local_addresses);
  for (const char* uri :
       {"/home/u/refs.json", "http://127.0.0.1:8080/refs.json", "http://localhost/refs.json"}) {
    AccessOptions a;
    a.scope_to(uri);
    EXPECT_TRUE(a.target.local_addresses && a.remote.local_addresses) << uri;
  }
  AccessOptions s3;  // an S3 source is where its endpoint is
  s3.target = StorageOptions::from_json({{"endpoint_url", "http://127.0.0.1:9000"}}, "x");
  s3.scope_to("s3://bucket/refs.json");
  EXPECT_TRUE(s3.remote.local_addresses);
}

TEST(AddressRule, RedirectsAreExemptOnlyWithAllowLocalReferences) {
  // A local reference set's own names are exempt; redirects from the servers it names are not.
  AccessOptions local;
  local.scope_to("/home/u/refs.json");
  EXPECT_TRUE(local.remote.local_addresses);
  EXPECT_FALSE(local.target.local_redirects || local.remote.local_redirects);
  EXPECT_FALSE(AccessOptions().store.local_redirects);  // an S3 store's endpoint: never
  AccessOptions allowed;
  allowed.allow_local(true);
  allowed.scope_to("https://data.example.org/refs.json");
  EXPECT_TRUE(allowed.target.local_redirects && allowed.remote.local_redirects);
  // Workers take it from the plan (allow_local_references) or from what the coordinator hands.
  EXPECT_TRUE(AccessOptions::from_public_json(allowed.public_json()).remote.local_redirects);
  EXPECT_TRUE(AccessOptions::from_transfer_text(allowed.transfer_text()).target.local_redirects);
  EXPECT_FALSE(AccessOptions::from_public_json(local.public_json()).remote.local_redirects);
}

TEST(AddressRule, ThisMachinesOwnAddressesAreLocal) {
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  int seen = 0;
  for (const ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6)) {
      EXPECT_TRUE(local_address(i->ifa_addr)) << address_text(i->ifa_addr);
      ++seen;
    }
  freeifaddrs(list);
  EXPECT_GT(seen, 0);
  sockaddr_in other{};  // TEST-NET-3: no machine's interface
  other.sin_family = AF_INET;
  inet_pton(AF_INET, "203.0.113.7", &other.sin_addr);
  EXPECT_FALSE(local_address(reinterpret_cast<const sockaddr*>(&other)));
}

TEST(Hash, HmacSha256AsRfc4231) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SecretScope, LocationsAreRedactedWhereverTheyAreShown) {
  EXPECT_EQ(redact_location("https://user:pw@h.example/a.nc"), "https://h.example/a.nc");
  EXPECT_EQ(redact_location("https://h/a.nc?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1"
                            "&X-Amz-Signature=abc&X-Amz-Security-Token=t&versionId=3"),
            "https://h/a.nc?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED"
            "&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&versionId=3");
  EXPECT_EQ(redact_location("https://h/a?sv=1&sig=s&key=k#frag"),
            "https://h/a?sv=1&sig=REDACTED&key=REDACTED#frag");
  EXPECT_EQ(redact_location("/local/a@b?sig=1"), "/local/a@b?sig=1");
  EXPECT_EQ(redact_location("https://h/p@q/a.nc"), "https://h/p@q/a.nc");  // '@' in the path
  // The data_uri keeps its secrets in the options only, under its redacted name.
  AccessOptions a;
  std::string uri = "https://me:p%40ss@h.example/d/a.nc?token=T0K";
  a.hide_secrets_of(uri);
  EXPECT_EQ(uri, "https://h.example/d/a.nc?token=REDACTED");
  EXPECT_EQ(a.target.basic_user, "me");
  EXPECT_EQ(a.target.basic_password, "p@ss");
  EXPECT_EQ(a.target.real_location(uri), "https://h.example/d/a.nc?token=T0K");
  EXPECT_EQ(a.public_json().dump().find("T0K"), std::string::npos);
  EXPECT_NE(a.secrets_text().find("T0K"), std::string::npos);
  // A reference set's signed chunk URLs: names that collide once redacted stay apart.
  std::vector<std::string> files = {"https://h/a.nc?sig=1", "https://h/a.nc?sig=2", "/local/b.nc",
                                    "https://h/a.nc?sig=1"};
  a.hide_secrets_of_files(files);
  EXPECT_EQ(files, (std::vector<std::string>{"https://h/a.nc?sig=REDACTED",
                                             "https://h/a.nc?sig=REDACTED#2", "/local/b.nc",
                                             "https://h/a.nc?sig=REDACTED"}));
  EXPECT_EQ(a.target.real_location(files[1]), "https://h/a.nc?sig=2");
  EXPECT_EQ(a.remote.real_location(files[0]), "https://h/a.nc?sig=1");
}

TEST(SecretScope, AProcessHoldingSecretsIsNotDumpable) {
  prctl(PR_SET_DUMPABLE, 1);  // as a process starts (other tests here held secrets)
  ASSERT_EQ(prctl(PR_GET_DUMPABLE), 1);
  {
    const SourceAccess none{AccessOptions{}};
    EXPECT_EQ(prctl(PR_GET_DUMPABLE), 1);
  }
  AccessOptions a;
  a.target.headers["Authorization"] = "Bearer x";
  const SourceAccess access(a);
  EXPECT_EQ(prctl(PR_GET_DUMPABLE), 0);
  prctl(PR_SET_DUMPABLE, 1);  // the other tests of this process
  // A worker, as soon as it is handed its secrets.
  AccessOptions w;
  w.add_secrets_text(a.secrets_text());
  EXPECT_EQ(prctl(PR_GET_DUMPABLE), 0);
  prctl(PR_SET_DUMPABLE, 1);
}

}  // namespace
}  // namespace zp
