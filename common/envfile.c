/* envfile.c - KEY=VALUE files in (a subset of) the syntax of a systemd
 * EnvironmentFile: cfg_parse_env_text(), declared in config.h with the
 * rules. config.c gives the assignments their meaning. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
	return -1;
}

/* One line (l[0..n), no newline) into key and value (NUL-terminated, in
 * the caller's buffers of n + 1 bytes). 1 for an assignment, 0 for a blank
 * or comment line, -1 with why. */
static int parse_line(const char *l, size_t n, char *key, char *val, const char **why)
{
	size_t i = 0, k = 0, v = 0;

	while (i < n && is_blank(l[i]))
		i++;
	if (i == n || l[i] == '#' || l[i] == ';')
		return 0;
	if (!((l[i] >= 'A' && l[i] <= 'Z') || (l[i] >= 'a' && l[i] <= 'z') || l[i] == '_')) {
		*why = "expected KEY=VALUE (a KEY starts with a letter or '_')";
		return -1;
	}
	while (i < n && ((l[i] >= 'A' && l[i] <= 'Z') || (l[i] >= 'a' && l[i] <= 'z') ||
			 (l[i] >= '0' && l[i] <= '9') || l[i] == '_'))
		key[k++] = l[i++];
	key[k] = '\0';
	while (i < n && is_blank(l[i]))
		i++;
	if (i == n || l[i] != '=') {
		*why = "expected KEY=VALUE (KEY is letters, digits and '_')";
		return -1;
	}
	i++;
	while (i < n && is_blank(l[i]))
		i++;
	if (i < n && (l[i] == '"' || l[i] == '\'')) {
		char q = l[i++];
		for (;; i++) {
			if (i == n) {
				*why = q == '"' ? "unterminated \" (a quoted value must close on its line)"
						: "unterminated ' (a quoted value must close on its line)";
				return -1;
			}
			if (l[i] == q)
				break;
			if (q == '"' && l[i] == '\\' && i + 1 < n) {
				i++;
				val[v++] = l[i] == 'n' ? '\n' : l[i] == 't' ? '\t' : l[i];
				continue;
			}
			val[v++] = l[i];
		}
		for (i++; i < n && is_blank(l[i]); i++)
			;
		if (i < n && l[i] != '#') {
			*why = "unexpected text after the closing quote";
			return -1;
		}
	} else {
		size_t end = n;
		while (end > i && is_blank(l[end - 1]))
			end--;
		while (i < end)
			val[v++] = l[i++];
	}
	val[v] = '\0';
	return 1;
}

int cfg_parse_env_text(const char *text, size_t len, const char *origin, cfg_assign_fn *fn,
		       void *opaque, char *errstr, size_t errstr_size)
{
	char *key = NULL, *val = NULL, why[512];
	const char *what = NULL;
	size_t cap = 0, at = 0;
	int line = 0, rc = -1;

	if (memchr(text, '\0', len)) {
		fail(errstr, errstr_size, "%s: contains a NUL byte: not a text file", origin);
		return -1;
	}
	while (at < len) {
		const char *l = text + at, *nl = memchr(l, '\n', len - at);
		size_t n = nl ? (size_t)(nl - l) : len - at;
		at += n + (nl != NULL);
		line++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (n + 1 > cap) {
			char *k2 = realloc(key, n + 1), *v2;
			if (k2)
				key = k2;
			if (!k2 || !(v2 = realloc(val, n + 1))) {
				fail(errstr, errstr_size, "%s:%d: out of memory", origin, line);
				goto out;
			}
			val = v2;
			cap = n + 1;
		}
		int r = parse_line(l, n, key, val, &what);
		if (r < 0) {
			fail(errstr, errstr_size, "%s:%d: %s", origin, line, what);
			goto out;
		}
		if (r == 0)
			continue;
		if (fn(opaque, key, val, why, sizeof(why)) != 0) {
			fail(errstr, errstr_size, "%s:%d: %s", origin, line, why);
			goto out;
		}
	}
	rc = 0;
out:
	free(key);
	free(val);
	return rc;
}

