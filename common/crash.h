/* crash.h - a stack trace on stderr when a daemon dies of a fault.
 *
 * crash_report_install() sets handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE
 * and SIGABRT that write one line naming the signal, the faulting address
 * and the thread, then the stack (glibc's backtrace_symbols_fd(): module
 * and offset per frame, for addr2line), and then let the signal kill the
 * process as before (the exit status and any core dump are unchanged). A
 * crash seen once in a test log can then be located without a core. Not in
 * a build with AddressSanitizer or ThreadSanitizer, whose reports say more.
 */
#ifndef METER_CRASH_H
#define METER_CRASH_H

/* Install the handlers. prog names the daemon in the report. Call once,
 * early, on the main thread (whose stack overflow is reported too: its
 * handler runs on an alternate stack; other threads have none). */
void crash_report_install(const char *prog);

#endif
