// How many threads this process runs: a process may fork (and go on without exec) only while it
// runs one, since a fork copies the calling thread alone and a lock another thread held would stay
// locked in the child.
#pragma once

namespace zp {

// Threads of this process (/proc/self/task), or -1 when that cannot be read.
int threads_of_this_process();

}  // namespace zp
