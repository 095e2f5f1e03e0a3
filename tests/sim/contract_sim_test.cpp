// The live contract under seeded random fault timelines (tests/sim/contract_sim.h). CI runs
// >= 1 M simulated chunks here; `contract_sim --seeds 1:2000 --chunks 100000` runs 200 M.
// A seed that once failed is kept in kRegressionSeeds with what it found.
#include <gtest/gtest.h>

#include "tests/sim/contract_sim.h"

namespace spikeflow::sim {
namespace {

TEST(ContractSimTest, one_million_chunks_over_forty_seeds_keep_the_contract) {
  uint64_t total = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.chunks = 25'000;
    const SimReport r = run_simulation(o);
    total += r.predictions;
    ASSERT_TRUE(r.ok) << r.summary() << "\nreproduce: contract_sim --seed " << seed
                      << " --chunks 25000 -v";
  }
  EXPECT_GE(total, 1'000'000u);
}

TEST(ContractSimTest, a_seed_replays_exactly) {
  SimOptions o;
  o.seed = 12345;
  o.chunks = 5'000;
  const SimReport a = run_simulation(o), b = run_simulation(o);
  EXPECT_EQ(a.summary(), b.summary());
  EXPECT_EQ(a.steps, b.steps);
}

}  // namespace
}  // namespace spikeflow::sim
