// Text from sources, stores and servers (an array name, a heartbeat's worker field, a server's
// message) shown on a terminal: control characters in it could retitle the window, clear the
// screen or forge lines, so they are shown escaped.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace zp {

// `text` with C0 controls except \n and \t, ESC, DEL and the C1 controls (U+0080 to U+009F)
// written as \xNN (\u0085 for a C1 control in UTF-8); bytes that are not UTF-8 as \xNN too.
std::string terminal_safe(std::string_view text);

// fmt::print to stdout through terminal_safe: for text output that quotes untrusted strings.
template <typename... Args>
void print_safe(fmt::format_string<Args...> format, Args&&... args) {
  const std::string text = terminal_safe(fmt::format(format, std::forward<Args>(args)...));
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace zp
