#include "runtime/wake_batch.h"

namespace wsb {

thread_local WakeBatch* WakeBatch::current_ = nullptr;

}  // namespace wsb
