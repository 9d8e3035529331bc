/* token.c - bearer tokens: made from the OpenSSL CSPRNG, stored as their
 * SHA-256, read from the Authorization header (see api.h). */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"

int api_token_new(char *out, size_t out_size)
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33]; /* 32 random bytes, one zero byte of padding for the loop */
	if (out_size < API_TOKEN_LEN + 1)
		return -1;
	if (RAND_bytes(raw, 32) != 1)
		return -1;
	raw[32] = 0;
	size_t o = strlen(API_TOKEN_PREFIX);
	memcpy(out, API_TOKEN_PREFIX, o);
	/* 32 bytes = 10 groups of 3 (40 characters) + 2 bytes (3 characters). */
	for (int i = 0; i < 33; i += 3) {
		unsigned v = ((unsigned)raw[i] << 16) | ((unsigned)raw[i + 1] << 8) |
			     (i + 2 < 33 ? raw[i + 2] : 0);
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		if (i + 3 < 33)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return o == API_TOKEN_LEN ? 0 : -1;
}

void api_token_hash(const char *token, char out[API_HASH_HEX])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

int api_bearer(const char *header, char *out, size_t out_size)
{
	if (out_size)
		out[0] = '\0';
	if (!header)
		return -1;
	const char *p = header;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return -1;
	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return -2;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
	size_t n = 0;
	while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
	       (p[n] >= '0' && p[n] <= '9') || (p[n] && strchr("-._~+/", p[n])))
		n++;
	size_t body = n;
	while (p[n] == '=')
		n++;
	size_t end = n;
	while (p[end] == ' ' || p[end] == '\t')
		end++;
	if (body == 0 || p[end] != '\0' || n > API_TOKEN_MAX || n + 1 > out_size)
		return -2;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}
