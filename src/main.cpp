// The `llmgw` executable: everything lives in llmgw_core; see src/cli/.
#include "llmgw/cli/commands.hpp"

int main(int argc, char** argv) {
  return llmgw::cli::run(argc, argv);
}
