// CppUTest runner for the core's unit tests. Leak detection is left to
// AddressSanitizer (the build runs under ASan), because CppUTest's own
// new/delete accounting misreports std:: containers' lazy allocations.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char** argv) {
  MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
  return CommandLineTestRunner::RunAllTests(argc, argv);
}
