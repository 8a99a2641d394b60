// Everything of sync/ at once: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition,
// Barrier (see each header for its contract, including what a process's death does).
#pragma once

#include "shuttle/barrier.hpp"
#include "shuttle/condition.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
