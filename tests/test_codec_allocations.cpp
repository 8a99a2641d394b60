// Counts each thread's allocations, so test_codec.cpp can prove that encoding allocates
// nothing. This replaces the global operator new of the whole test program; it only counts.
// (In a file of its own: a compiler that inlines both sides warns about new/free pairs.)
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t allocations = 0;
}

void* operator new(std::size_t size) {
    ++allocations;
    if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
    throw std::bad_alloc();
}
void operator delete(void* memory) noexcept {
    std::free(memory);
}
void operator delete(void* memory, std::size_t) noexcept {
    std::free(memory);
}

namespace shuttle::test {
std::size_t allocation_count() noexcept {
    return allocations;
}
}  // namespace shuttle::test
