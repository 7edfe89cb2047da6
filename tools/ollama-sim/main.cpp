// The `ollama-sim` executable: everything lives in llmgw_core; see src/sim/.
#include "llmgw/sim/ollama_sim.hpp"

int main(int argc, char** argv) {
  return llmgw::sim::run_cli(argc, argv);
}
