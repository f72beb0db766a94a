// Shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp, built by
// scripts/fuzz.sh): REQUIRE, a check that stays on in every build and stops
// the run (libFuzzer then saves the input that broke it).
#pragma once
#include <cstdlib>

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)
