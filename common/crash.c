/* crash.c - see crash.h. Only async-signal-safe calls in the handler:
 * write(2), backtrace() (preloaded at install: its first call may load
 * libgcc and allocate) and backtrace_symbols_fd(), which does not allocate. */
#define _GNU_SOURCE
#include "crash.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FRAMES 64
#define ALT_STACK_SIZE (64 * 1024)

static const char *crash_prog = "meter";

static void put(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* v in hexadecimal into out (room for 19 bytes). */
static void hex(uintptr_t v, char *out)
{
	char tmp[16];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v && n < 16);
	*out++ = '0';
	*out++ = 'x';
	while (n > 0)
		*out++ = tmp[--n];
	*out = '\0';
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	char addr[20], thread[16] = "?";
	hex((uintptr_t)si->si_addr, addr);
	pthread_getname_np(pthread_self(), thread, sizeof(thread));
	put(crash_prog);
	put(": fatal signal ");
	put(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	if (sig != SIGABRT) {
		put(" at address ");
		put(addr);
	}
	put(" in thread ");
	put(thread);
	put("; stack:\n");
	void *frames[MAX_FRAMES];
	int n = backtrace(frames, MAX_FRAMES);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	/* SA_RESETHAND restored the default action: returning re-runs a
	 * faulting instruction, which now kills the process; a signal that was
	 * sent (kill, raise, abort: si_code <= 0) is raised again. */
	if (si->si_code <= 0)
		raise(sig);
}

void crash_report_install(const char *prog)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* A sanitized build (make SANITIZE=...): the sanitizer's own report
	 * of a fault says more; keep its handlers. */
	(void)prog;
	return;
#endif
	crash_prog = prog;
	void *warm[1];
	backtrace(warm, 1); /* load libgcc now, not in the handler */
	stack_t ss = {0};
	ss.ss_sp = malloc(ALT_STACK_SIZE);
	ss.ss_size = ALT_STACK_SIZE;
	int alt = ss.ss_sp && sigaltstack(&ss, NULL) == 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | (alt ? SA_ONSTACK : 0);
	sigemptyset(&sa.sa_mask);
	const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}
