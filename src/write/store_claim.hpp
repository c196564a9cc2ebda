// Whose prefix is it, on any Writable (an S3 prefix above all, where there is no folder to
// create): a store is ours when it carries the marker `.zarr-parallel/store.json` (the same marker
// as a local store's, store_ownership.hpp). A prefix holding objects but no marker of ours is
// foreign and refused; an empty one is claimed by creating the marker first, with put-if-absent,
// so of two runs claiming it at once one creates it and both then see the same store id.
#pragma once

#include <optional>
#include <string>

#include "store/writable.hpp"
#include "write/store_ownership.hpp"

namespace zp {

// Absent (nothing under the root), Ours (our marker) or Foreign (objects without it; `why` says).
TargetState classify_store(const Writable& store);

// The store id of a store of ours, claiming an empty prefix first. Error(Store), exit 5, naming
// the root when the prefix is foreign.
std::string claim_store(const Writable& store);

// The store id its marker holds; nullopt when there is no marker of ours (never claims).
std::optional<std::string> store_id_in(const Writable& store);

}  // namespace zp
