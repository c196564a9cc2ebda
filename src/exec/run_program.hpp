// run_program: runs an external command (sbatch, squeue, scancel, scontrol) by exec argv, never
// through a shell, so no word of it (a job id read from a store) can be taken as shell syntax.
#pragma once

#include <string>
#include <vector>

namespace zp {

struct ProgramResult {
  int status = -1;  // waitpid status; 0 when the program exited 0
  std::string out;  // its stdout and stderr, interleaved
};

// Runs argv[0] (searched in PATH) with argv; throws Error(Job) only when it cannot be started.
ProgramResult run_program(const std::vector<std::string>& argv);

// "squeue -h -j 12": the command as a message shows it.
std::string command_text(const std::vector<std::string>& argv);

}  // namespace zp
