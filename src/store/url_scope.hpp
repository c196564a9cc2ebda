// Locations and their secrets. Whose a location is: the scope a credential belongs to. HTTP(S)
// credentials and headers belong to an origin (scheme, host and port, as browsers scope them); S3
// credentials to a bucket. A request to a location outside the scope of the options it would use is
// sent without their secrets, so a reference set (untrusted input) cannot make us send a token to a
// host it names.
#pragma once

#include <string>

namespace zp {

// "https://user:pw@Host.org/a?b" -> "https://host.org:443"; "" when `url` is not an http(s) URL
// libcurl can parse.
std::string origin_of(const std::string& url);
// The scope of a location: its origin (http, https), "s3://bucket" (s3), "" (local paths).
std::string scope_of(const std::string& location);

// What a location may show on disk, in logs and in messages: a URL without its userinfo
// ("user:pw@") and with the values of secret query parameters (X-Amz-Signature, X-Amz-Credential,
// X-Amz-Security-Token, sig, token, key, ...: any name naming a signature, credential, token,
// secret or password) replaced by "REDACTED". Local paths and plain URLs are returned unchanged.
std::string redact_location(const std::string& location);
// Free text (a message) with every URL in it redacted as above: the last line of defence for
// messages that quote a location as a server or a reference set spelled it.
std::string redact_urls_in(const std::string& text);
// `url` without its userinfo; `user` and `password` get it, percent-decoded ("" when none).
std::string strip_userinfo(const std::string& url, std::string& user, std::string& password);

}  // namespace zp
