#include "source/zarr/object_arrays.hpp"

#include <cstring>

#include "core/error.hpp"

namespace zp {

namespace {

constexpr std::size_t kMaxWholeObjects = std::size_t{256} << 20;

// numcodecs Categorize: codes of dtype `astype`, 0 for "", k for labels[k - 1].
std::vector<std::string> categorize_items(const Bytes& in, const nlohmann::json& config,
                                          const std::string& where) {
  if (!config.contains("labels") || !config["labels"].is_array())
    throw Error::source(where, "categorize filter without a labels list");
  std::vector<std::string> labels;
  for (const auto& l : config["labels"]) {
    if (!l.is_string()) throw Error::source(where, "categorize labels must be strings");
    labels.push_back(l.get<std::string>());
  }
  const nlohmann::json as = config.contains("astype") ? config["astype"] : nlohmann::json("|u1");
  if (!as.is_string()) throw Error::source(where, "categorize astype must be a dtype string");
  const DType astype = DType::parse(as.get<std::string>());
  if (astype.kind != 'u' && astype.kind != 'i')
    throw Error::source(where, "categorize astype must be an integer dtype");
  const auto size = static_cast<std::size_t>(astype.size);
  std::vector<std::string> items(in.size() / size);
  for (std::size_t i = 0; i < items.size(); ++i) {
    Bytes one(in.begin() + static_cast<std::ptrdiff_t>(i * size),
              in.begin() + static_cast<std::ptrdiff_t>((i + 1) * size));
    if (astype.big_endian) byteswap(one.data(), 1, astype.swap_unit());
    const double code = load_as_double(one.data(), 0, astype.native());
    if (code < 0 || code > static_cast<double>(labels.size()))
      throw Error::source(where, "categorize code " + std::to_string(code) + " has no label");
    if (code > 0) items[i] = labels[static_cast<std::size_t>(code) - 1];
  }
  return items;
}

// A chunk's stored bytes through its codecs (decode order), to the object codec's input.
Bytes decode_chunk(const Variable& v, Bytes b, const std::string& at) {
  for (std::size_t k = v.codecs.size(); k-- > 0;) {
    const Codec* codec = find_codec(v.codecs[k].id);
    if (!codec) throw Error::source(at, "unsupported codec '" + v.codecs[k].id + "'");
    try {
      b = codec->decode(b, v.codecs[k].config, 0);
    } catch (const Error& e) {
      throw Error::source(at, "codec '" + v.codecs[k].id + "' failed: " + e.what());
    }
  }
  return b;
}

// The chunk's values, through the object codec; as many as a chunk holds.
std::vector<std::string> chunk_items(const Bytes& b, const nlohmann::json& object_filter,
                                     std::size_t per_chunk, const std::string& at) {
  const std::string id = object_filter.value("id", "");
  std::vector<std::string> items;
  try {
    items = id == "categorize" ? categorize_items(b, object_filter, at) : vlen_items(b);
  } catch (const Error& e) {
    throw Error::source(at, std::string(id) + ": " + e.what());
  }
  if (items.size() != per_chunk)
    throw Error::source(
        at, std::to_string(items.size()) + " values, expected " + std::to_string(per_chunk));
  return items;
}

// Places chunk `idx`'s in-bounds values (C order within the chunk) into `values`, counting the
// bytes held against the cap.
void place_items(const Variable& v, int64_t idx, std::vector<std::string>& items,
                 std::vector<std::string>& values, std::size_t& held, const std::string& where) {
  const auto cc = v.grid.coords(idx);
  std::vector<int64_t> pos(v.ndim(), 0);
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::size_t flat = 0;
    bool inside = true;
    for (std::size_t d = 0; d < v.ndim(); ++d) {
      const int64_t g = cc[d] * v.grid.chunk_shape[d] + pos[d];
      inside &= g < v.shape[d];
      flat = flat * static_cast<std::size_t>(v.shape[d]) + static_cast<std::size_t>(g);
    }
    if (inside) {
      held += items[i].size();
      if (held > kMaxWholeObjects)
        throw Error::source(where,
                            "text array over 256 MiB: text arrays are read whole and "
                            "zarr-parallel caps them at 256 MiB");
      values[v.ndim() == 0 ? 0 : flat] = std::move(items[i]);
    }
    for (std::size_t d = v.ndim(); d-- > 0;) {
      if (++pos[d] < v.grid.chunk_shape[d]) break;
      pos[d] = 0;
    }
  }
}

// The values as fixed-width text, as wide as the longest, held as one inline chunk.
void hold_fixed_width(Variable& v, const std::vector<std::string>& values, const std::string& id,
                      const std::string& where) {
  const std::size_t n = values.size();
  std::size_t width = 1;
  for (const auto& s : values) width = std::max(width, s.size());
  if (n * width > kMaxWholeObjects)
    throw Error::source(where,
                        "text array over 256 MiB as fixed-width text: text arrays are read "
                        "whole and zarr-parallel caps them at 256 MiB");
  Bytes data(n * width, 0);
  for (std::size_t i = 0; i < n; ++i)
    std::memcpy(data.data() + i * width, values[i].data(), values[i].size());
  v.dtype = DType{'S', static_cast<int>(width), false};
  v.object_codec = id == "vlen-bytes" ? "vlen-bytes" : "vlen-utf8";
  v.hold_whole(std::move(data));
}

}  // namespace

bool is_text_object_codec(const std::string& id) {
  return id == "vlen-utf8" || id == "vlen-bytes" || id == "categorize";
}

void read_object_array_whole(Variable& v, const nlohmann::json& object_filter,
                             const std::function<std::optional<Bytes>(int64_t)>& raw_chunk,
                             const std::string& where) {
  std::size_t n = 1;
  for (int64_t s : v.shape) n *= static_cast<std::size_t>(s);
  if (n > kMaxWholeObjects / 8)
    throw Error::source(where, std::to_string(n) +
                                   " text values: text arrays are read whole and "
                                   "zarr-parallel caps them at 256 MiB");
  std::vector<std::string> values(n);
  std::size_t per_chunk = 1;
  for (int64_t c : v.grid.chunk_shape) per_chunk *= static_cast<std::size_t>(c);
  std::size_t held = 0;
  for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
    std::optional<Bytes> raw = raw_chunk(idx);
    if (!raw) continue;  // never written: zarr-python reads its fill value; here, empty text
    const std::string at = where + ", chunk " + std::to_string(idx);
    std::vector<std::string> items =
        chunk_items(decode_chunk(v, std::move(*raw), at), object_filter, per_chunk, at);
    place_items(v, idx, items, values, held, where);
  }
  hold_fixed_width(v, values, object_filter.value("id", ""), where);
}

}  // namespace zp
