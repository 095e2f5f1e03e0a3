// contract_sim: runs the deterministic simulation of the live contract (tests/sim/contract_sim.h)
// for one seed or a range of seeds. A failing seed is printed with the command that replays it.
//   contract_sim --seed 7 --chunks 1000000        one seed, verbose with -v
//   contract_sim --seeds 1:2000 --chunks 100000   seeds 1..2000 (200 M simulated chunks)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "tests/sim/contract_sim.h"

int main(int argc, char** argv) {
  uint64_t first = 1, last = 1, chunks = 100'000;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "contract_sim: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--seed") {
        first = last = std::stoull(value());
      } else if (a == "--seeds") {
        const std::string v = value();
        const auto colon = v.find(':');
        if (colon == std::string::npos) throw std::invalid_argument(v);
        first = std::stoull(v.substr(0, colon));
        last = std::stoull(v.substr(colon + 1));
      } else if (a == "--chunks") {
        chunks = std::stoull(value());
      } else if (a == "-v" || a == "--verbose") {
        verbose = true;
      } else {
        std::fprintf(stderr,
                     "contract_sim: unknown argument %s (--seed S | --seeds A:B, --chunks N, -v)\n",
                     a.c_str());
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "contract_sim: %s: not a number or range\n", a.c_str());
      return 2;
    }
  }
  if (last < first || chunks == 0) {
    std::fprintf(stderr, "contract_sim: empty seed range or --chunks 0\n");
    return 2;
  }
  uint64_t failures = 0, total = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    spikeflow::sim::SimOptions o;
    o.seed = seed;
    o.chunks = chunks;
    o.verbose = verbose;
    const auto r = spikeflow::sim::run_simulation(o);
    total += r.predictions;
    std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed), r.summary().c_str());
    if (!r.ok) {
      ++failures;
      std::printf("  reproduce: contract_sim --seed %llu --chunks %llu -v\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(chunks));
    }
    std::fflush(stdout);
  }
  std::printf("%llu seeds, %llu simulated chunks, %llu failing seeds\n",
              static_cast<unsigned long long>(last - first + 1),
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(failures));
  return failures == 0 ? 0 : 1;
}
