// What the program says on stdout and stderr, written so that a reader who went away (`| head`
// that has its lines, a dashboard that crashed, a closed terminal) never ends a run: the stream
// falls silent and the work goes on. A cache run's product is the store; its stdout and stderr
// are only a view of the work (README, "Running"). Needs SIGPIPE ignored (the CLI's main does it;
// Python ignores it itself), so that the write fails with EPIPE instead of killing the process.
#pragma once

#include <cstdio>
#include <string_view>

namespace zp {

// Writes and flushes all of `text` to `stream` (stdout or stderr); once a write to it failed, the
// stream is closed for us and this writes nothing. Never throws.
void say(std::FILE* stream, std::string_view text);

}  // namespace zp
