// A tiny persistent thread pool for the kernels.
//
// A decode step makes ~200 kernel calls of 10-100 µs each, so waking a thread per call
// (futex wake + schedule, 5-50 µs on a VM) would eat the gain of a second core. Workers
// therefore spin on a generation counter for a while after each job and only then sleep on
// a futex (a condvar off Linux). The caller never waits for a sleeping worker to wake: tasks
// are claimed one by one from a shared ticket, the caller claims them too, and the call
// returns as soon as every task has *finished*, whoever ran it. A late worker that wakes
// after the job is over finds no task left and goes back to waiting.
//
// The job descriptor (fn, ctx, tasks) is published seqlock-style: the generation is odd
// while it is written and even when it is valid. A worker reads the descriptor between two
// reads of the generation and then claims tasks by a compare-and-swap on a 64-bit ticket that
// carries (generation, next task). A successful claim proves the job is still current, and
// the caller cannot publish another job until that task is done, so the descriptor the worker
// read stays valid while it runs.
#define _GNU_SOURCE
#include "internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define RS_MAX_THREADS 64

typedef void (*rs_task_fn)(void *ctx, int task);

static _Atomic uint32_t pool_gen;        // futex word; odd while the descriptor is written
static _Atomic uint64_t pool_ticket;     // (generation << 32) | next unclaimed task
static _Atomic(rs_task_fn) pool_fn;
static _Atomic(void *) pool_ctx;
static _Atomic int pool_tasks;
static _Atomic int pool_completed;       // tasks finished in the current job
static _Atomic int pool_sleepers;        // workers blocked (or about to block) on the futex
static _Atomic int pool_busy;            // a job is in flight: nested/concurrent calls run inline
static _Atomic int pool_participants;    // workers (not counting the caller) that take tasks
static _Atomic int pool_isa;             // the caller's ISA override (rs_isa_override) for the job
static _Atomic int pool_spin_us = 100;   // how long an idle worker spins before sleeping

static int pool_threads;                 // threads per job including the caller; 0 = not set
static int pool_started;                 // worker threads created so far
static pthread_mutex_t pool_start_lock = PTHREAD_MUTEX_INITIALIZER;

#ifndef __linux__
static pthread_mutex_t pool_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_sleep_cond = PTHREAD_COND_INITIALIZER;
#endif

static inline void cpu_relax(void) {
#if RS_X86
    _mm_pause();
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/// Blocks while `pool_gen == seen` (may return spuriously).
static void sleep_on_gen(uint32_t seen) {
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)&pool_gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    pthread_mutex_lock(&pool_sleep_lock);
    if (atomic_load(&pool_gen) == seen) pthread_cond_wait(&pool_sleep_cond, &pool_sleep_lock);
    pthread_mutex_unlock(&pool_sleep_lock);
#endif
}

static void wake_all(void) {
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)&pool_gen, FUTEX_WAKE_PRIVATE, RS_MAX_THREADS, NULL, NULL, 0);
#else
    pthread_mutex_lock(&pool_sleep_lock);
    pthread_cond_broadcast(&pool_sleep_cond);
    pthread_mutex_unlock(&pool_sleep_lock);
#endif
}

/// Claims and runs tasks of job `gen` until none is left.
static void run_tasks(uint32_t gen, rs_task_fn fn, void *ctx, int tasks) {
    uint64_t t = atomic_load_explicit(&pool_ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(t >> 32) != gen || (int)(uint32_t)t >= tasks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool_ticket, &t, t + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        fn(ctx, (int)(uint32_t)t);
        atomic_fetch_add_explicit(&pool_completed, 1, memory_order_release);
        t = atomic_load_explicit(&pool_ticket, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;  // 0-based among workers
    uint32_t seen = atomic_load(&pool_gen) & ~1u;
    for (;;) {
        // Wait for a new, fully published job: spin first, then sleep.
        uint32_t g;
        uint64_t spin_start = 0;
        for (unsigned i = 0;; i++) {
            g = atomic_load_explicit(&pool_gen, memory_order_acquire);
            if (g != seen && !(g & 1)) break;
            cpu_relax();
            if ((i & 63) == 63) {
                // Yield now and then: when the machine is oversubscribed the thread that will
                // publish the next job (or finish this one) may be waiting for this very core.
                sched_yield();
                uint64_t t = now_ns();
                if (spin_start == 0) spin_start = t;
                if (t - spin_start > (uint64_t)atomic_load_explicit(&pool_spin_us, memory_order_relaxed) * 1000u) {
                    atomic_fetch_add(&pool_sleepers, 1);
                    sleep_on_gen(g);
                    atomic_fetch_sub(&pool_sleepers, 1);
                    spin_start = 0;
                }
            }
        }
        seen = g;
        // Read the descriptor; it is valid only if the generation did not move meanwhile.
        rs_task_fn fn = atomic_load_explicit(&pool_fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&pool_ctx, memory_order_relaxed);
        int tasks = atomic_load_explicit(&pool_tasks, memory_order_relaxed);
        int participants = atomic_load_explicit(&pool_participants, memory_order_relaxed);
        int isa = atomic_load_explicit(&pool_isa, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&pool_gen, memory_order_relaxed) != g) continue;
        // Run the caller's tasks at the caller's level: an override is the caller's alone.
        rs_isa_override = isa;
        if (index < participants) run_tasks(g, fn, ctx, tasks);
    }
    return NULL;
}

static int online_cpus(void) {
    int n = 1;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && (n <= 1 || online < n)) n = (int)online;
    if (n < 1) n = 1;
    return n > RS_MAX_THREADS ? RS_MAX_THREADS : n;
}

int rs_threads_get(void) {
    if (pool_threads == 0) pool_threads = online_cpus();
    return pool_threads;
}

void rs_threads_set(int threads) {
    if (threads <= 0) threads = online_cpus();
    pool_threads = threads > RS_MAX_THREADS ? RS_MAX_THREADS : threads;
}

void rs_threads_set_spin_us(int microseconds) {
    atomic_store(&pool_spin_us, microseconds < 0 ? 0 : microseconds);
}

/// Pins worker `index` to the (index+1)-th CPU this process may use (the caller is left free).
/// Unpinned, the scheduler often woke a worker on the caller's own CPU, where the two then
/// shared one core for milliseconds (measured: threaded matmuls at single-thread speed for
/// whole 20 ms windows after OpenBLAS's threads had run). A pinned worker cannot be stacked on
/// the caller's CPU; the caller moves instead. If its CPU is busy, the caller simply runs the
/// tasks itself (tasks are claimed, not assigned).
static void pin_worker(pthread_t th, int index) {
#ifdef __linux__
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int count = CPU_COUNT(&allowed);
    if (count < 2) return;
    int want = (index + 1) % count, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (seen++ == want) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(th, sizeof one, &one);
            return;
        }
    }
#else
    (void)th;
    (void)index;
#endif
}

/// Creates workers up to `count` (they are never destroyed; extra ones just stay idle).
static void ensure_workers(int count) {
    if (pool_started >= count) return;
    pthread_mutex_lock(&pool_start_lock);
    while (pool_started < count) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);
        if (pthread_create(&th, &attr, worker_main, (void *)(intptr_t)pool_started) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        pthread_detach(th);
        pin_worker(th, pool_started);
        pool_started++;
    }
    pthread_mutex_unlock(&pool_start_lock);
}

void rs_parallel_for(void (*fn)(void *ctx, int task), void *ctx, int tasks) {
    if (tasks <= 0) return;
    int threads = rs_threads_get();
    if (tasks == 1 || threads <= 1 || atomic_exchange(&pool_busy, 1)) {
        for (int i = 0; i < tasks; i++) fn(ctx, i);
        return;
    }
    ensure_workers(threads - 1);
    int participants = threads - 1 < pool_started ? threads - 1 : pool_started;
    if (participants > tasks - 1) participants = tasks - 1;

    // Publish: odd generation while writing, then the ticket, then the even generation.
    uint32_t g = atomic_load_explicit(&pool_gen, memory_order_relaxed);
    atomic_store_explicit(&pool_gen, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&pool_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool_tasks, tasks, memory_order_relaxed);
    atomic_store_explicit(&pool_participants, participants, memory_order_relaxed);
    atomic_store_explicit(&pool_isa, rs_isa_override, memory_order_relaxed);
    atomic_store_explicit(&pool_completed, 0, memory_order_relaxed);
    uint32_t job = g + 2;
    atomic_store_explicit(&pool_ticket, (uint64_t)job << 32, memory_order_release);
    atomic_store(&pool_gen, job);  // seq_cst: ordered before the sleepers check below
    if (atomic_load(&pool_sleepers) > 0) wake_all();

    run_tasks(job, fn, ctx, tasks);
    // Wait for tasks other threads claimed; they are already running, so this is short.
    for (unsigned i = 0; atomic_load_explicit(&pool_completed, memory_order_acquire) < tasks; i++) {
        cpu_relax();
        if ((i & 255) == 255) sched_yield();  // the machine may be oversubscribed
    }
    atomic_store_explicit(&pool_busy, 0, memory_order_release);
}
