// What a resumed plan must satisfy before any of its jobs run, on every kind of store: a store
// (its plan.json and state.json) is untrusted, so a saved plan continues only if it reads exactly
// what this config's source reads now, unchanged since the plan was made.
#pragma once

#include <string>

#include "plan/plan.hpp"

namespace zp {

// The saved plan reads the same files as a fresh plan of this config (an edited plan cannot make
// a resume read a file of the user's into the store). Throws a store error naming the first one.
void check_same_files(const std::string& root, const Plan& stored, const Plan& fresh);

// The source's files are unchanged since the saved plan was made (its fingerprints, read with
// `plan.access`). Throws a source error naming the change.
void check_resumable(const std::string& root, const Plan& plan);

}  // namespace zp
