// The thread team that runs the independent pieces of a pass (members, shards, tangent chunks).
//
// The caller takes items too, and waits only for items that some thread has claimed, never for a
// worker to wake up: on a loaded machine a worker that is not scheduled in time simply finds nothing
// left to do, where an OpenMP barrier would stall the whole pass until it runs. (Element-wise loops
// and GEMM jobs inside one piece use OpenMP; inside an item they stay on the item's thread.)
#pragma once

#include <functional>

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

// fn(i) for i in [0, n), on the calling thread and up to `threads` − 1 workers; returns when all ran.
void parallel_items(i64 n, int threads, const std::function<void(i64)>& fn);

// parallel_items for items that may throw: every item runs, the first exception is rethrown here.
void checked_items(i64 n, int threads, const std::function<void(i64)>& fn);

// True on a thread while it runs an item (its loops must not fork).
bool in_item();

}  // namespace cpu
}  // namespace pyquirk
