// Shared by the Pool suites: each test body runs in a child under a watchdog, so a pool that
// hangs fails its test instead of blocking the suite.
#pragma once

#include <gtest/gtest.h>

#include <chrono>

#include "support.hpp"

namespace shuttle::test {

/// Runs `body` in a child process (killed and failed after `limit`); its gtest failures fail
/// the calling test.
template <class Body>
void in_child(Body body, std::chrono::milliseconds limit = std::chrono::milliseconds(20000)) {
    EXPECT_EQ(run_child(
                  [&] {
                      body();
                      return ::testing::Test::HasFailure() ? 1 : 0;
                  },
                  limit),
              0);
}

}  // namespace shuttle::test
