// A folder for files that must stay the run's own: the SLURM job scripts, the logs slurmstepd
// writes (it opens `--output` as the submitting user and follows symbolic links) and the secrets
// channel. A folder someone else made, or could write, rename or replace, would let them plant
// links that make us write over their target, swap a script before sbatch reads it, or read
// secrets: such a folder is refused, never used.
#pragma once

#include <string>

namespace zp {

// `path` as a private folder: created with mkdir (mode 0700, checked after), or, if it exists,
// verified: a real directory (not a link), owned by our euid; one of ours that group or others
// may write is made 0700 (said on stderr). No folder above it (its real path) may be writable by
// every user unless sticky (/tmp): else anyone could rename it and put their own in its place
// (the owners and groups of the folders above are trusted: they could replace the store itself).
// `what`: what the folder is for, in the error (ErrorKind::Store naming the folder). Returns its
// real path (the one to hand to SLURM).
std::string private_folder(const std::string& path, const std::string& what);

// Refuses (ErrorKind::Store) when an entry of `folder` whose name starts with `prefix` is not a
// regular file of ours with one link: a private folder that was once shared may still hold links
// planted then under names SLURM is about to open.
void only_own_files(const std::string& folder, const std::string& prefix, const std::string& what);

}  // namespace zp
