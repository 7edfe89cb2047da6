// Placeholder until the emulator lands (issue 2); replaced by a thin main over llmgw::sim.
#include <cstdio>

int main() {
  std::fputs("ollama-sim: not built yet\n", stderr);
  return 1;
}
