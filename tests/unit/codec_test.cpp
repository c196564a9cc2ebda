// Codec round trips through the one codec table, and the failures that must be caught.
#include "codec/codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "codec/hdf5_filters.hpp"
#include "codec/shard_index.hpp"
#include "core/error.hpp"

namespace zp {
namespace {

Bytes smooth_data(std::size_t n) {
  Bytes b(n);
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((i / 64) + (rng() % 3));
  return b;
}

TEST(Codec, EveryEncodableCodecRoundTrips) {
  const Bytes data = smooth_data(100003);  // odd length: shuffles keep trailing bytes
  const std::vector<nlohmann::json> specs = {
      {{"id", "zlib"}, {"level", 6}},
      {{"id", "gzip"}, {"level", 1}},
      {{"id", "shuffle"}, {"elementsize", 4}},
      {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 0}},
      {{"id", "blosc"}, {"cname", "zstd"}, {"clevel", 3}, {"shuffle", 2}, {"blocksize", 0}},
      {{"id", "zstd"}, {"level", 3}},
      {{"id", "lz4"}, {"acceleration", 1}},
      {{"id", "fletcher32"}},
  };
  for (const auto& j : specs) {
    const CodecSpec spec = codec_spec_from_json(j, "test");
    const Bytes encoded = encode_chain({spec}, data, 4);
    EXPECT_EQ(decode_chain({spec}, encoded, data.size(), "test"), data) << j.dump();
  }
}

// The vector kernels (element sizes 2, 4, 8: 16 elements a step) and the blocked loop against the
// definition, at lengths around their step and block edges, with trailing bytes.
TEST(Codec, UnshuffleMatchesItsDefinition) {
  std::mt19937 rng(11);
  for (std::size_t es = 1; es <= 17; ++es)
    for (const std::size_t n : {0, 1, 15, 16, 17, 33, 1023, 1024, 1025, 5000})
      for (const std::size_t tail : {std::size_t{0}, es / 2}) {
        Bytes in(n * es + tail);
        for (auto& c : in) c = static_cast<unsigned char>(rng());
        Bytes want(in.size());
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t b = 0; b < es; ++b) want[i * es + b] = in[b * n + i];
        for (std::size_t k = n * es; k < in.size(); ++k) want[k] = in[k];
        const nlohmann::json config = {{"elementsize", es}};
        ASSERT_EQ(shuffle_decode(in, config, 0), want) << "es " << es << " n " << n;
        ASSERT_EQ(shuffle_encode(want, config, 0), in) << "es " << es << " n " << n;
      }
}

// A zlib or gzip bomb (64 MiB of zeros in ~64 kB) for a 4 kB chunk: refused at the chunk's size
// (issue 26 item 16). Before, inflate doubled its buffer until the stream ended and returned it
// all.
TEST(Codec, InflateStopsAtTheExpectedChunkSize) {
  const Bytes zeros(64u << 20, 0);
  for (const char* id : {"zlib", "gzip"}) {
    const CodecSpec spec = codec_spec_from_json({{"id", id}, {"level", 1}}, "t");
    const Bytes bomb = encode_chain({spec}, zeros, 1);
    ASSERT_LT(bomb.size(), 1u << 20);
    const Codec* codec = find_codec(id);
    ASSERT_NE(codec, nullptr);
    try {
      codec->decode(bomb, spec.config, 4096);
      ADD_FAILURE() << id << ": a 64 MiB stream decoded for a 4 kB chunk";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("decodes to more than"), std::string::npos) << e.what();
    }
    // Without a known size, DEFLATE's own ratio bounds it, and an honest stream still decodes.
    EXPECT_EQ(codec->decode(bomb, spec.config, 0).size(), zeros.size()) << id;
  }
}

TEST(Codec, ChainsDecodeInReverseOrder) {
  const Bytes data = smooth_data(4096);
  const std::vector<CodecSpec> chain = {
      codec_spec_from_json({{"id", "shuffle"}, {"elementsize", 2}}, "t"),
      codec_spec_from_json({{"id", "zlib"}, {"level", 4}}, "t"),
      codec_spec_from_json({{"id", "fletcher32"}}, "t")};
  const Bytes encoded = encode_chain(chain, data, 2);
  EXPECT_EQ(decode_chain(chain, encoded, data.size(), "t"), data);
}

// Decoding straight into a buffer equals decoding to a new one, for chains whose last decode step
// writes in place (shuffle, zlib, gzip, blosc) and chains whose last step cannot (fletcher32,
// packbits-like filters first, no codec at all); bytes around the destination are untouched; data
// of another size than expected fails with the same message either way.
TEST(Codec, DecodingIntoABufferEqualsDecoding) {
  const Bytes data = smooth_data(4096);
  auto spec = [](const nlohmann::json& j) { return codec_spec_from_json(j, "t"); };
  const std::vector<std::vector<CodecSpec>> chains = {
      {},
      {spec({{"id", "zlib"}, {"level", 4}})},
      {spec({{"id", "gzip"}, {"level", 1}})},
      {spec({{"id", "shuffle"}, {"elementsize", 2}}), spec({{"id", "zlib"}, {"level", 1}})},
      {spec({{"id", "shuffle"}, {"elementsize", 1}}), spec({{"id", "zlib"}, {"level", 1}})},
      {spec({{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 0}})},
      {spec({{"id", "fletcher32"}}), spec({{"id", "zlib"}, {"level", 1}})},
      {spec({{"id", "zlib"}, {"level", 1}}), spec({{"id", "fletcher32"}})},
      {spec({{"id", "shuffle"}, {"elementsize", 2}}), spec({{"id", "zlib"}, {"level", 4}}),
       spec({{"id", "fletcher32"}})},
      {spec({{"id", "lz4"}, {"acceleration", 1}}), spec({{"id", "zstd"}, {"level", 1}})},
  };
  for (const auto& chain : chains) {
    std::string name;
    for (const auto& c : chain) name += c.id + " ";
    const Bytes encoded = encode_chain(chain, data, 2);
    Bytes target(data.size() + 64, 0xAB);
    decode_chain_into(chain, encoded, target.data() + 32, data.size(), [] { return "t"; });
    EXPECT_EQ(Bytes(target.begin() + 32, target.end() - 32), data) << name;
    EXPECT_EQ(std::count(target.begin(), target.begin() + 32, 0xAB), 32) << name;
    EXPECT_EQ(std::count(target.end() - 32, target.end(), 0xAB), 32) << name;
    for (const std::size_t other : {data.size() - 2, data.size() + 2}) {
      std::string direct, plain;
      try {
        decode_chain_into(chain, encoded, target.data(), std::min(other, target.size()),
                          [] { return "t"; });
      } catch (const Error& e) {
        direct = e.what();
      }
      try {
        decode_chain(chain, encoded, other, "t");
      } catch (const Error& e) {
        plain = e.what();
      }
      EXPECT_FALSE(plain.empty()) << name << other;
      EXPECT_EQ(direct, plain) << name << other;
    }
  }
}

// Agreement with HDF5's own checksum is tested on files netCDF-C writes (netcdf_read_test).
TEST(Codec, Fletcher32CatchesCorruption) {
  Bytes data = smooth_data(1000);
  Bytes encoded = fletcher32_encode(data, {}, 1);
  encoded[10] ^= 0x01;
  EXPECT_THROW(fletcher32_decode(encoded, {}, 0), Error);
}

TEST(Codec, CorruptStreamsAreErrorsNotCrashes) {
  const Bytes garbage = smooth_data(300);
  for (const char* id : {"zlib", "gzip", "blosc", "zstd", "lz4", "hdf5_lz4"}) {
    const CodecSpec spec{id, {{"id", id}}};
    EXPECT_THROW(decode_chain({spec}, garbage, 4096, "chunk"), Error) << id;
  }
  EXPECT_THROW(decode_chain({}, garbage, 301, "chunk"), Error);  // size mismatch
}

TEST(Codec, UnknownCodecsAndHdf5FiltersNameWhatIsUnsupported) {
  try {
    codec_spec_from_json({{"id", "brotli"}}, "d2m compressor");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("brotli"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("d2m compressor"), std::string::npos);
  }
  try {
    codec_from_hdf5_filter(4, {}, 2, "f.nc, variable 'x'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("szip"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("variable 'x'"), std::string::npos);
  }
  EXPECT_EQ(codec_from_hdf5_filter(1, {9}, 2, "f").config["level"], 9);
  EXPECT_EQ(codec_from_hdf5_filter(2, {}, 8, "f").config["elementsize"], 8);
}

TEST(Codec, Hdf5Lz4FramingDecodes) {
  // Two blocks of 8 bytes: the first stored raw (incompressible), the second LZ4-compressed.
  const Bytes raw = {1, 2, 3, 4, 5, 6, 7, 8};
  const Bytes numcodecs =
      lz4_encode(Bytes(8, 9), nlohmann::json::object(), 1);  // 4-byte size header + block
  Bytes framed = {0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0, 0, 8};
  framed.insert(framed.end(), raw.begin(), raw.end());
  const uint32_t csize = static_cast<uint32_t>(numcodecs.size() - 4);
  framed.push_back(0), framed.push_back(0), framed.push_back(0),
      framed.push_back(static_cast<unsigned char>(csize));
  framed.insert(framed.end(), numcodecs.begin() + 4, numcodecs.end());
  Bytes expected = raw;
  expected.insert(expected.end(), 8, 9);
  EXPECT_EQ(hdf5_lz4_decode(framed, {}, 16), expected);
}

TEST(Codec, PackBitsMatchesNumcodecsBytes) {
  // numcodecs.PackBits().encode([T,F,T,T,F,F,T,T,T,F]): padding count, then np.packbits.
  const Bytes bools = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
  const CodecSpec spec = codec_spec_from_json({{"id", "packbits"}}, "test");
  const Bytes packed = encode_chain({spec}, bools, 1);
  EXPECT_EQ(packed, (Bytes{6, 0xB3, 0x80}));
  EXPECT_EQ(decode_chain({spec}, packed, bools.size(), "test"), bools);
  EXPECT_THROW(decode_chain({spec}, Bytes{9, 0}, 1, "test"), Error);
}

TEST(Codec, OrderFTransposesChunksToCOrder) {
  // A 2 x 3 chunk of 2-byte items, stored in Fortran order: columns first.
  const CodecSpec spec =
      codec_spec_from_json({{"id", "order_f"}, {"shape", {2, 3}}, {"itemsize", 2}}, "t");
  const Bytes fortran = {0, 0, 3, 3, 1, 1, 4, 4, 2, 2, 5, 5};
  const Bytes c_order = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
  EXPECT_EQ(decode_chain({spec}, fortran, 12, "t"), c_order);
  EXPECT_EQ(encode_chain({spec}, c_order, 2), fortran);
  EXPECT_THROW(decode_chain({spec}, Bytes(10, 0), 10, "t"), Error);
  const CodecSpec bad = codec_spec_from_json({{"id", "order_f"}, {"shape", {"x"}}}, "t");
  EXPECT_THROW(decode_chain({bad}, Bytes(4, 0), 4, "t"), Error);
}

TEST(Codec, VlenItemsKeepTheirLengthsAndFixedWidthPaddingComesBack) {
  // Fixed-width 'S3' items "ab", "", "xyz" -> numcodecs VLenUTF8 layout and back.
  const Bytes fixed = {'a', 'b', 0, 0, 0, 0, 'x', 'y', 'z'};
  const CodecSpec spec = codec_spec_from_json({{"id", "vlen-utf8"}}, "t");
  const Bytes enc = encode_chain({spec}, fixed, 3);
  EXPECT_EQ(enc, (Bytes{3, 0, 0, 0, 2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 3, 0, 0, 0, 'x', 'y', 'z'}));
  EXPECT_EQ(vlen_items(enc), (std::vector<std::string>{"ab", "", "xyz"}));
  EXPECT_EQ(decode_chain({spec}, enc, fixed.size(), "t"), fixed);
  EXPECT_THROW(decode_chain({spec}, enc, 6, "t"), Error);  // an item longer than the width
  EXPECT_THROW(vlen_items(Bytes{5, 0, 0, 0, 1}), Error);   // truncated
}

}  // namespace
}  // namespace zp

namespace zp {
namespace {

TEST(Crc32c, MatchesTheCastagnoliCheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(reinterpret_cast<const unsigned char*>(s.data()), s.size()), 0xE3069283u);
  const Bytes in(s.begin(), s.end());
  const Bytes enc = crc32c_encode(in, nullptr, 1);
  ASSERT_EQ(enc.size(), in.size() + 4);
  EXPECT_EQ(crc32c_decode(enc, nullptr, 0), in);
  Bytes bad = enc;
  bad[0] ^= 1;
  EXPECT_THROW(crc32c_decode(bad, nullptr, 0), Error);
}

TEST(ShardIndex, RoundTripsAndRefusesEntriesOutsideTheShard) {
  std::vector<ShardEntry> e = {{0, 10}, {}, {10, 5}};
  const Bytes idx = encode_shard_index(e);
  ASSERT_EQ(idx.size(), shard_index_bytes(3));
  const auto back = decode_shard_index(idx, 3, 0, 15, "shard");
  EXPECT_EQ(back[0].nbytes, 10u);
  EXPECT_TRUE(back[1].missing());
  EXPECT_EQ(back[2].offset, 10u);
  EXPECT_THROW(decode_shard_index(idx, 3, 0, 12, "shard"), Error);  // past the data
  // index_location "start": the data follows the index; an entry inside the index is outside it.
  EXPECT_EQ(decode_shard_index(encode_shard_index({{idx.size(), 10}}), 1, idx.size(),
                               idx.size() + 10, "shard")[0]
                .nbytes,
            10u);
  EXPECT_THROW(decode_shard_index(idx, 3, idx.size(), idx.size() + 15, "shard"), Error);
  Bytes bad = idx;
  bad[3] ^= 1;
  EXPECT_THROW(decode_shard_index(bad, 3, 0, 15, "shard"), Error);  // checksum
}

TEST(CodecV3, TranslatesNamesAndConfigurationsBothWays) {
  const auto blosc =
      codec_to_v3(codec_spec_from_json(
                      {{"id", "blosc"}, {"cname", "zstd"}, {"clevel", 3}, {"shuffle", 2}}, "t"),
                  4, "t");
  EXPECT_EQ(blosc["name"], "blosc");
  EXPECT_EQ(blosc["configuration"]["shuffle"], "bitshuffle");
  EXPECT_EQ(blosc["configuration"]["typesize"], 4);
  const CodecSpec back = codec_from_v3(blosc, "t");
  EXPECT_EQ(back.id, "blosc");
  EXPECT_EQ(back.config["shuffle"], 2);
  EXPECT_EQ(codec_to_v3(codec_spec_from_json({{"id", "zlib"}}, "t"), 2, "t")["name"],
            "numcodecs.zlib");
  EXPECT_EQ(
      codec_from_v3({{"name", "numcodecs.lz4"}, {"configuration", {{"acceleration", 1}}}}, "t").id,
      "lz4");
  EXPECT_EQ(codec_kind("bytes"), CodecKind::ArrayToBytes);
  EXPECT_EQ(codec_kind("delta"), CodecKind::ArrayToArray);
  EXPECT_THROW(codec_to_v3(codec_spec_from_json({{"id", "fletcher32"}}, "t"), 2, "t"), Error);
  EXPECT_THROW(codec_from_v3({{"name", "nosuch"}}, "t"), Error);
}

TEST(Codec, SzipParametersFromAFileAreChecked) {
  // Header: 8 decoded bytes. The stream itself never gets read: the parameters are refused first.
  const Bytes chunk = {8, 0, 0, 0, 0, 0, 0, 0};
  const nlohmann::json good = {
      {"mask", 141}, {"pixels_per_block", 32}, {"bits_per_pixel", 8}, {"pixels_per_scanline", 8}};
  for (const auto& [key, bad] :
       std::vector<std::pair<std::string, int64_t>>{{"mask", 4096},
                                                    {"pixels_per_block", 0},
                                                    {"bits_per_pixel", -8},
                                                    {"pixels_per_scanline", int64_t{1} << 40}}) {
    nlohmann::json config = good;
    config[key] = bad;
    try {
      szip_decode(chunk, config, 8);
      ADD_FAILURE() << key << " " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace zp
