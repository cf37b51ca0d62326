#include "cpu/threads.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#endif

namespace pyquirk {
namespace cpu {

namespace {

thread_local bool t_in_item = false;

// After fork() the child has none of the parent's threads. Our team is rebuilt (Team::get checks
// the pid), but GNU OpenMP would wait forever for its old pool at the child's first parallel region,
// so a forked child runs its loops on one thread (fork_ok). The mutexes a fork could catch mid-use
// are held across it.
std::atomic<bool> g_forked{false};
std::mutex g_create;  // guards Team::get

void before_fork() { g_create.lock(); }
void after_fork_parent() { g_create.unlock(); }
void after_fork_child() {
  g_create.unlock();
  g_forked = true;
}

struct ForkHandlers {
  ForkHandlers() {
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
#endif
  }
} g_fork_handlers;

struct Batch {
  const std::function<void(i64)>* fn = nullptr;
  i64 n = 0;
  std::atomic<i64> next{0}, done{0};
  std::mutex m;
  std::condition_variable finished;
};

// Claims and runs items of b until none is left.
void work(Batch& b) {
  const bool outer = t_in_item;
  t_in_item = true;
  for (i64 i = b.next.fetch_add(1); i < b.n; i = b.next.fetch_add(1)) {
    (*b.fn)(i);
    if (b.done.fetch_add(1) + 1 == b.n) {
      std::lock_guard<std::mutex> lock(b.m);
      b.finished.notify_all();
    }
  }
  t_in_item = outer;
}

class Team {
 public:
  // Workers sleep on a condition variable; each new batch wakes them. The team is never destroyed
  // (its threads are detached and die with the process); a forked child builds its own.
  static Team& get() {
    static Team* team = nullptr;
    std::lock_guard<std::mutex> lock(g_create);
    if (!team || team->pid_ != current_pid()) team = new Team();  // the old one's threads did not fork
    return *team;
  }

  void run(i64 n, int threads, const std::function<void(i64)>& fn) {
    auto b = std::make_shared<Batch>();
    b->fn = &fn;
    b->n = n;
    start(std::min<i64>(threads, n) - 1);
    {
      std::lock_guard<std::mutex> lock(m_);
      current_ = b;
      ++generation_;
    }
    wake_.notify_all();
    work(*b);
    std::unique_lock<std::mutex> lock(b->m);
    b->finished.wait(lock, [&] { return b->done.load() == b->n; });
  }

 private:
  static long current_pid() {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<long>(getpid());
#else
    return 0;
#endif
  }

  void start(i64 workers) {
    std::lock_guard<std::mutex> lock(m_);
    while (static_cast<i64>(started_) < workers) {
      std::thread([this] { loop(); }).detach();
      ++started_;
    }
  }

  void loop() {
    unsigned long seen = 0;
    for (;;) {
      std::shared_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        b = current_;
      }
      if (b) work(*b);
    }
  }

  long pid_ = current_pid();
  std::mutex m_;
  std::condition_variable wake_;
  std::shared_ptr<Batch> current_;
  unsigned long generation_ = 0;
  size_t started_ = 0;
};

}  // namespace

bool in_item() { return t_in_item; }

bool forked_child() { return g_forked.load(); }

int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

void parallel_items(i64 n, int threads, const std::function<void(i64)>& fn) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1 || t_in_item) {
    const bool outer = t_in_item;
    t_in_item = n > 1 || outer;  // a single item may still fork its own loops
    for (i64 i = 0; i < n; ++i) fn(i);
    t_in_item = outer;
    return;
  }
  Team::get().run(n, threads, fn);
}

void checked_items(i64 n, int threads, const std::function<void(i64)>& fn) {
  std::exception_ptr error;
  std::mutex error_mutex;
  parallel_items(n, threads, [&](i64 i) {
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace cpu
}  // namespace pyquirk
