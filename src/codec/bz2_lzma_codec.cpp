// numcodecs BZ2 (libbz2) and LZMA (liblzma, .xz and legacy .lzma containers). Decode only; the
// output is bounded by the expected size so a corrupt or hostile stream cannot grow without end.
#include <bzlib.h>
#include <lzma.h>

#include <climits>
#include <cstdint>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

Bytes bz2_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  Bytes out(hint ? hint + 1024 : in.size() * 8 + 64);  // + a checksum's worth of slack
  if (in.size() > UINT_MAX || out.size() > UINT_MAX)
    throw Error(ErrorKind::Source, "bz2 chunk larger than 4 GB");
  unsigned int n = static_cast<unsigned int>(out.size());
  const int rc = BZ2_bzBuffToBuffDecompress(reinterpret_cast<char*>(out.data()), &n,
                                            const_cast<char*>(reinterpret_cast<const char*>(in.data())),
                                            static_cast<unsigned int>(in.size()), 0, 0);
  if (rc != BZ_OK) throw Error(ErrorKind::Source, "bz2 stream is corrupt or larger than expected");
  out.resize(n);
  return out;
}

Bytes lzma_decode(const Bytes& in, const nlohmann::json& config, std::size_t hint) {
  if (config.contains("format") && config["format"].is_number_integer() && config["format"] == 3)
    throw Error(ErrorKind::Source, "LZMA raw format (format=3) is not supported");
  lzma_stream s = LZMA_STREAM_INIT;
  // A header can ask for a 4 GB dictionary: the decoder's memory is capped (numcodecs' presets
  // need at most 64 MiB); a stream that needs more fails with LZMA_MEMLIMIT_ERROR.
  if (lzma_auto_decoder(&s, uint64_t{256} << 20, 0) != LZMA_OK)
    throw Error(ErrorKind::Source, "cannot start an LZMA decoder");
  const std::size_t cap = hint ? hint + 1024 : in.size() * 8 + 1024;
  Bytes out(hint ? hint : in.size() * 4 + 64);
  s.next_in = in.data();
  s.avail_in = in.size();
  std::size_t done = 0;
  lzma_ret rc = LZMA_OK;
  while (rc == LZMA_OK) {
    if (done == out.size()) {
      if (out.size() >= cap) break;
      out.resize(std::min(cap, out.size() * 2));
    }
    s.next_out = out.data() + done;
    s.avail_out = out.size() - done;
    rc = lzma_code(&s, LZMA_FINISH);
    done = out.size() - s.avail_out;
  }
  lzma_end(&s);
  if (rc != LZMA_STREAM_END)
    throw Error(ErrorKind::Source, rc == LZMA_MEMLIMIT_ERROR
                                       ? "LZMA stream needs more than 256 MiB to decode"
                                       : "LZMA stream is corrupt or larger than expected");
  out.resize(done);
  return out;
}

}  // namespace zp
