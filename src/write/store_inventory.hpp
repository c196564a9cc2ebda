// Which entries of a store of ours zarr-parallel wrote: its side folder, and the metadata and chunk
// keys of the plan the store was built from. Anything else in it is the user's — a variable added
// with xarray's to_zarr(mode="a"), steps appended along a dimension, a note, a symbolic link — and
// replacing or deleting the store must not take it along.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

struct ForeignEntries {
  int64_t count = 0;                  // entries not ours (a foreign folder counts once)
  std::vector<std::string> examples;  // the first few, relative to the store
  // "'extra/', 'notes.txt' and 2 more" (a folder ends in '/')
  std::string describe() const;
};

// Every key `plan` writes: its metadata documents, its consolidated document and every chunk of
// every array (a sharded or all-fill one may be absent from the store).
std::unordered_set<std::string> keys_written_by(const Plan& plan);

// Walks the store at `root` (a store of ours) without following symbolic links. Error(Store) when
// the store cannot be listed or its plan cannot be read: then what is ours is not known.
ForeignEntries entries_not_ours(const std::string& root, std::size_t max_examples = 3);

// Deletes the temporary files that writers killed mid-write left in a store of ours: those of the
// keys `plan` (the store's own) writes and those in its side folder, never a file of the user's
// however named.
void remove_stale_temporaries(const std::string& root, const Plan& plan);

}  // namespace zp
