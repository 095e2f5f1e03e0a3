#include "core/r2.h"

#include <gtest/gtest.h>

namespace spikeflow::core {

TEST(R2Test, perfect_prediction_is_one_and_mean_prediction_is_zero) {
  std::vector<float> truth{1, 10, 2, 20, 3, 30};
  EXPECT_NEAR(r2_per_dim(truth, truth, 2)[0], 1.0, 1e-12);
  std::vector<float> mean_pred{2, 20, 2, 20, 2, 20};
  auto r = r2_per_dim(truth, mean_pred, 2);
  EXPECT_NEAR(r[0], 0.0, 1e-12);
  EXPECT_NEAR(r[1], 0.0, 1e-12);
}

TEST(R2Test, constant_truth_gives_zero_not_nan) {
  std::vector<float> truth{1, 1, 1};
  std::vector<float> pred{0, 1, 2};
  EXPECT_EQ(r2_per_dim(truth, pred, 1)[0], 0.0);
}

TEST(R2Test, mismatched_sizes_throw) {
  EXPECT_THROW(r2_per_dim({1, 2}, {1}, 1), std::invalid_argument);
}

}  // namespace spikeflow::core
