/* guard.c - the SSRF guard's address classifier. A webhook URL is chosen by
 * a tenant, so without a guard it could make the notifier POST into the
 * operator's own network: loopback services, private ranges, the cloud
 * metadata endpoint. engine.c asks this classifier about the address each
 * connection is about to use (libcurl's opensocket callback, after DNS), so
 * a name that resolves - or re-resolves - to such an address is refused,
 * whatever the URL says. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "notifier.h"

const char *ntf_addr_class_name(enum ntf_addr_class c)
{
	switch (c) {
	case NTF_ADDR_PUBLIC: return "public";
	case NTF_ADDR_UNSPECIFIED: return "unspecified";
	case NTF_ADDR_LOOPBACK: return "loopback";
	case NTF_ADDR_PRIVATE: return "private";
	case NTF_ADDR_SHARED: return "shared (carrier-grade NAT)";
	case NTF_ADDR_LINK_LOCAL: return "link-local";
	case NTF_ADDR_METADATA: return "cloud metadata";
	case NTF_ADDR_UNIQUE_LOCAL: return "unique local";
	case NTF_ADDR_MULTICAST: return "multicast";
	case NTF_ADDR_RESERVED: return "reserved";
	}
	return "?";
}

/* a (host order) within net/bits */
static int in4(uint32_t a, uint32_t net, int bits)
{
	uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	return (a & mask) == (net & mask);
}

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static enum ntf_addr_class classify4(uint32_t a)
{
	/* Well-known metadata services first: they sit inside the ranges below. */
	if (a == V4(169, 254, 169, 254) || a == V4(169, 254, 170, 2) ||
	    a == V4(100, 100, 100, 200))
		return NTF_ADDR_METADATA;
	if (in4(a, V4(0, 0, 0, 0), 8))
		return NTF_ADDR_UNSPECIFIED;
	if (in4(a, V4(127, 0, 0, 0), 8))
		return NTF_ADDR_LOOPBACK;
	if (in4(a, V4(10, 0, 0, 0), 8) || in4(a, V4(172, 16, 0, 0), 12) ||
	    in4(a, V4(192, 168, 0, 0), 16))
		return NTF_ADDR_PRIVATE;
	if (in4(a, V4(100, 64, 0, 0), 10))
		return NTF_ADDR_SHARED;
	if (in4(a, V4(169, 254, 0, 0), 16))
		return NTF_ADDR_LINK_LOCAL;
	if (in4(a, V4(224, 0, 0, 0), 4))
		return NTF_ADDR_MULTICAST;
	if (in4(a, V4(192, 0, 0, 0), 24) ||    /* IETF protocol assignments */
	    in4(a, V4(192, 0, 2, 0), 24) ||    /* TEST-NET-1 */
	    in4(a, V4(198, 51, 100, 0), 24) || /* TEST-NET-2 */
	    in4(a, V4(203, 0, 113, 0), 24) ||  /* TEST-NET-3 */
	    in4(a, V4(198, 18, 0, 0), 15) ||   /* benchmarking */
	    in4(a, V4(192, 88, 99, 0), 24) ||  /* deprecated 6to4 relay anycast */
	    in4(a, V4(240, 0, 0, 0), 4))       /* reserved, and 255.255.255.255 */
		return NTF_ADDR_RESERVED;
	return NTF_ADDR_PUBLIC;
}

static uint32_t v4_at(const unsigned char *b)
{
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static enum ntf_addr_class classify6(const unsigned char *b)
{
	static const unsigned char zero[16];
	if (memcmp(b, zero, 16) == 0)
		return NTF_ADDR_UNSPECIFIED;
	if (memcmp(b, zero, 15) == 0 && b[15] == 1)
		return NTF_ADDR_LOOPBACK;
	/* IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible
	 * ::a.b.c.d: the kernel connects to the IPv4 address. */
	if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
		return classify4(v4_at(b + 12));
	if (memcmp(b, zero, 12) == 0)
		return classify4(v4_at(b + 12));
	/* NAT64 well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48:
	 * a translator forwards to the embedded IPv4 address. */
	if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
		if (memcmp(b + 4, zero, 8) == 0)
			return classify4(v4_at(b + 12));
		if (b[4] == 0x00 && b[5] == 0x01)
			return NTF_ADDR_RESERVED;
	}
	/* 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD. */
	if (b[0] == 0x20 && b[1] == 0x02) {
		enum ntf_addr_class c = classify4(v4_at(b + 2));
		if (c != NTF_ADDR_PUBLIC)
			return c;
	}
	if (b[0] == 0xff)
		return NTF_ADDR_MULTICAST;
	if ((b[0] & 0xfe) == 0xfc)
		return NTF_ADDR_UNIQUE_LOCAL;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return NTF_ADDR_LINK_LOCAL;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return NTF_ADDR_PRIVATE; /* deprecated site-local fec0::/10 */
	/* 100::/64 discard-only, 2001:db8::/32 documentation, 2001::/23 IETF
	 * protocol assignments (Teredo 2001::/32 included: it tunnels to an
	 * obfuscated IPv4 address we do not judge). */
	if (b[0] == 0x01 && b[1] == 0x00 && memcmp(b + 2, zero, 6) == 0)
		return NTF_ADDR_RESERVED;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return NTF_ADDR_RESERVED;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02)
		return NTF_ADDR_RESERVED;
	/* Anything outside global unicast 2000::/3 is unassigned. */
	if ((b[0] & 0xe0) != 0x20)
		return NTF_ADDR_RESERVED;
	return NTF_ADDR_PUBLIC;
}

enum ntf_addr_class ntf_addr_classify(const struct sockaddr *sa, socklen_t len)
{
	if (!sa)
		return NTF_ADDR_RESERVED;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		return classify4(ntohl(in.sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		return classify6(in6.sin6_addr.s6_addr);
	}
	return NTF_ADDR_RESERVED;
}

int ntf_addr_classify_text(const char *ip, enum ntf_addr_class *out)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		*out = classify4(ntohl(a4.s_addr));
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		*out = classify6(a6.s6_addr);
		return 0;
	}
	return -1;
}
