/* Errors are values: a status, and a message kept per thread. Halide's error handler (which by default
 * prints and aborts) is replaced by one that records the message for the call that raised it. */
#include "internal.h"
#include "call_context.h"

#include <HalideRuntime.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *bq_last_error(void) { return last_error; }

bq_status bq_fail(bq_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return status;
}

/* Halide calls this from whichever thread failed, a worker thread included, with the user_context the
 * kernel was called with: the first message of a call wins and the caller's thread reports it. */
static void record_halide_error(void *user_context, const char *message) {
    bq_call_context *call = user_context;
    if (call == NULL) return;
    if (atomic_exchange(&call->failed, 1) == 0) {
        snprintf(call->message, sizeof call->message, "%s", message);
        size_t len = strlen(call->message);
        while (len > 0 && call->message[len - 1] == '\n')
            call->message[--len] = '\0';
    }
}

void bq_install_halide_error_handler(void) { halide_set_error_handler(record_halide_error); }
