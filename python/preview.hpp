// The preview binding (python/preview.cpp), added to the module by module.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <functional>
#include <string>

namespace zp {

// Runs its argument without the GIL, turning engine errors into the module's Python exceptions.
using EngineCall = std::function<std::string(const std::function<std::string()>&)>;

void bind_preview(pybind11::module_& m, const EngineCall& call);

}  // namespace zp
