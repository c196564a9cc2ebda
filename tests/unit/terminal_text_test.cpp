// terminal_safe: what reaches the terminal from untrusted text has its control characters escaped.
#include "core/terminal_text.hpp"

#include <gtest/gtest.h>

namespace zp {
namespace {

TEST(TerminalText, EscapesControlsKeepsText) {
  EXPECT_EQ(terminal_safe("plain t2m\tline\n"), "plain t2m\tline\n");
  EXPECT_EQ(terminal_safe("\x1b]0;PWNED\x07\x1b[2J"), "\\x1b]0;PWNED\\x07\\x1b[2J");
  EXPECT_EQ(terminal_safe(std::string("a\0b\r\x7f", 5)), "a\\x00b\\x0d\\x7f");
  EXPECT_EQ(terminal_safe("\xc2\x9b"
                          "31m"),
            "\\u009b31m");  // C1 CSI
  EXPECT_EQ(terminal_safe("\xc3\xa9t\xc3\xa9 \xe2\x82\xac"), "\xc3\xa9t\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(terminal_safe("\x9b\xff\xc2"), "\\x9b\\xff\\xc2");  // not UTF-8
}

}  // namespace
}  // namespace zp
