/* The CPU kernels' thread pool: the library's own, installed as Halide's do_par_for (the generated kernels
 * call halide_do_par_for for their parallel loops), in place of the pool in Halide's bundled runtime, whose
 * thread start-up writes through an unchecked malloc and ignores pthread_create's status, and which can
 * only grow.
 *
 * - A parallel loop is a job: its caller queues it, wakes the workers and takes tasks from it as they do,
 *   then waits for the tasks the workers took. Jobs of different callers share the workers, oldest first.
 * - Workers are started on demand, up to the thread count less one (the caller is the other thread) and
 *   the loop's tasks less one. A worker that cannot be started is not an error: the loop runs on the
 *   threads there are, at least its caller.
 * - bq_pool_set_threads lowers the count at once: the workers above it finish the task they run, if any,
 *   and are joined before it returns. Kernels running meanwhile go on with the workers left.
 * - After fork() the child starts with no workers (the parent's are not copied); its loops start new ones.
 * - Unloading the library joins the workers, which would otherwise run unmapped code. */
#include "internal.h"

#include <HalideRuntime.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct job {
    halide_task_t task;
    void *user_context;
    uint8_t *closure;
    int next, end;      /* the next task to hand out, one past the last */
    atomic_int running; /* tasks handed out and not finished: changed under the lock, watched by the caller */
    int result;         /* the first nonzero task result: no more tasks are handed out */
    int waiting;        /* the caller sleeps on `finished` */
    struct job *later;  /* the queue of jobs with tasks to hand out */
} job;

/* Threads that find nothing to do yield this many times, watching for work, before they sleep: loops called
 * back to back (a layer after a layer) then find the workers awake, as in Halide's own pool. */
#define SPINS 40

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;     /* workers: a job was queued, or the count fell */
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER; /* callers: a job's last running task ended */
static pthread_cond_t gone = PTHREAD_COND_INITIALIZER;     /* bq_pool_set_threads: a worker left */
static pthread_mutex_t resize_lock = PTHREAD_MUTEX_INITIALIZER; /* one count change at a time */
static job *queue;
static atomic_int queued; /* the queue's length: watched by spinning workers */
static int sleepers;      /* workers sleeping on `work` */
static atomic_int threads = 1; /* the count, the callers included; read without the lock by loops */
/* Workers running, with ids 0 .. started - 1 (a count change is finished, its workers joined, before the next
 * begins, and workers are started only below the count, so the ids stay contiguous). */
static int started;
static pthread_t workers[BQ_MAX_THREADS - 1];

static void unqueue(job *j) {
    for (job **link = &queue; *link != NULL; link = &(*link)->later) {
        if (*link == j) {
            *link = j->later;
            atomic_fetch_sub(&queued, 1);
            return;
        }
    }
}

/* Hands out j's next task, under the lock. */
static int take(job *j) {
    int index = j->next++;
    atomic_fetch_add(&j->running, 1);
    if (j->next == j->end) unqueue(j);
    return index;
}

/* Runs task index of j outside the lock; returns with the lock held, j's bookkeeping done. */
static void run(job *j, int index) {
    pthread_mutex_unlock(&lock);
    int result = j->task(j->user_context, index, j->closure);
    pthread_mutex_lock(&lock);
    atomic_fetch_sub(&j->running, 1);
    if (result != 0 && j->result == 0) {
        j->result = result;
        if (j->next < j->end) {
            j->next = j->end;
            unqueue(j);
        }
    }
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&lock);
    while (id < atomic_load(&threads) - 1) {
        job *j = queue;
        if (j == NULL) {
            pthread_mutex_unlock(&lock);
            for (int spin = 0; spin < SPINS && atomic_load(&queued) == 0 && id < atomic_load(&threads) - 1; spin++)
                sched_yield();
            pthread_mutex_lock(&lock);
            if (queue == NULL && id < atomic_load(&threads) - 1) {
                sleepers++;
                pthread_cond_wait(&work, &lock);
                sleepers--;
            }
            continue;
        }
        run(j, take(j));
        /* The caller may return, and j go, once it holds the lock again: j is not touched after. */
        if (j->waiting && atomic_load(&j->running) == 0 && j->next == j->end) pthread_cond_broadcast(&finished);
    }
    started--;
    pthread_cond_broadcast(&gone);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {
    if (size <= 0) return 0;
    if (size == 1 || atomic_load(&threads) <= 1) {
        for (int i = min; i < min + size; i++) {
            int result = task(user_context, i, closure);
            if (result != 0) return result;
        }
        return 0;
    }
    job j = {task, user_context, closure, min, min + size, 0, 0, 0, NULL};
    pthread_mutex_lock(&lock);
    int wanted = atomic_load(&threads) - 1;
    if (wanted > size - 1) wanted = size - 1;
    while (started < wanted) {
        if (pthread_create(&workers[started], NULL, worker, (void *)(intptr_t)started) != 0) break;
        started++;
    }
    job **tail = &queue;
    while (*tail != NULL)
        tail = &(*tail)->later;
    *tail = &j;
    atomic_fetch_add(&queued, 1);
    if (sleepers > 0) pthread_cond_broadcast(&work);
    while (j.next < j.end)
        run(&j, take(&j));
    while (atomic_load(&j.running) > 0) {
        pthread_mutex_unlock(&lock);
        for (int spin = 0; spin < SPINS && atomic_load(&j.running) > 0; spin++)
            sched_yield();
        pthread_mutex_lock(&lock); /* also waits out a worker still in its bookkeeping of j */
        if (atomic_load(&j.running) > 0) {
            j.waiting = 1;
            pthread_cond_wait(&finished, &lock);
            j.waiting = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return j.result;
}

void bq_pool_set_threads(int n) {
    pthread_mutex_lock(&resize_lock);
    pthread_mutex_lock(&lock);
    int before = started;
    atomic_store(&threads, n);
    if (started > n - 1) {
        pthread_cond_broadcast(&work);
        while (started > n - 1)
            pthread_cond_wait(&gone, &lock);
        /* Each has left the lock for good, and only returns: joining it under the lock cannot wait on us. */
        for (int id = n - 1; id < before; id++)
            pthread_join(workers[id], NULL);
    }
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&resize_lock);
}

/* fork() copies only the calling thread: the child has no workers, and no other thread's job or lock.
 * The locks are held across the fork so that the child's copies are in a known state. */
static void before_fork(void) {
    pthread_mutex_lock(&resize_lock);
    pthread_mutex_lock(&lock);
}

static void after_fork_parent(void) {
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&resize_lock);
}

static void after_fork_child(void) {
    started = 0;
    sleepers = 0;
    queue = NULL;
    atomic_store(&queued, 0);
    pthread_cond_init(&work, NULL);
    pthread_cond_init(&finished, NULL);
    pthread_cond_init(&gone, NULL);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&resize_lock);
}

static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void install(void) {
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    halide_set_custom_do_par_for(do_par_for);
}

void bq_pool_install(void) { pthread_once(&install_once, install); }

__attribute__((destructor)) static void join_workers(void) {
    int n = atomic_load(&threads);
    bq_pool_set_threads(1);
    atomic_store(&threads, n);
}
