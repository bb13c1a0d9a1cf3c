package latchkey

import (
	"net/netip"
	"strings"
)

// The webhook destination policy. An account admin chooses where webhooks
// go, but the server makes the calls: without a policy, an admin could make
// the server POST to its own loopback services, to the private network
// around it, or to a cloud metadata endpoint that hands out credentials.
// So every address that is not public unicast is refused by default, both
// when a webhook's URL is set and after DNS resolution on every connection
// a delivery makes; the operator opens exact ranges where receivers live
// (latchkey serve --webhook-allow-cidr).

// DestinationRule says why an address is refused by default.
type DestinationRule struct {
	Kind  string       // what the range is: "loopback", "private", ...
	Range netip.Prefix // the range that holds the address
	Ref   string       // the RFC that reserves the range, if one says it best
	// Metadata is set for cloud metadata endpoints, which only an opening
	// of exactly that address lets through.
	Metadata bool
	// Via is set when the address embeds an IPv4 address (NAT64, 6to4):
	// the rule of the embedding range, and the rule above is the embedded
	// address's.
	Via *DestinationRule
}

// String names the rule for a message: "loopback address (127.0.0.0/8)",
// "NAT64 address (64:ff9b::/96) of a loopback address (127.0.0.0/8)".
func (r DestinationRule) String() string {
	var in []string
	if r.Range.IsValid() {
		in = append(in, r.Range.String())
	}
	if r.Ref != "" {
		in = append(in, r.Ref)
	}
	s := r.Kind + " address"
	if len(in) > 0 {
		s += " (" + strings.Join(in, ", ") + ")"
	}
	if r.Via != nil {
		s = r.Via.String() + " of a " + s
	}
	return s
}

// refusedRange is one line of the default-refused list.
type refusedRange struct {
	prefix    netip.Prefix
	kind, ref string
	// embeds returns the IPv4 address that an address of the range
	// carries (NAT64, 6to4), which decides instead of the range.
	embeds func(a [16]byte) netip.Addr
}

func rr(p, kind, ref string) refusedRange {
	return refusedRange{prefix: netip.MustParsePrefix(p), kind: kind, ref: ref}
}

// metadataAddrs are the cloud metadata endpoints. Each also lies in a
// range refused below; they are named apart so that opening that range
// (a company's fd00::/8, say) does not open them.
var metadataAddrs = func() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, s := range []string{
		"169.254.169.254", // AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack and more
		"169.254.170.2",   // AWS ECS task metadata and credentials
		"169.254.170.23",  // AWS EKS Pod Identity credentials
		"100.100.100.200", // Alibaba Cloud
		"192.0.0.192",     // Oracle Cloud (legacy)
		"fd00:ec2::254",   // AWS IMDS over IPv6
		"fd00:ec2::23",    // AWS EKS Pod Identity over IPv6
		"fd20:ce::254",    // GCP metadata over IPv6
	} {
		m[netip.MustParseAddr(s)] = true
	}
	return m
}()

// refusedRanges is the default-refused list, the more specific range of
// two first. IPv4-mapped IPv6 addresses (::ffff:0:0/96) are judged as the
// IPv4 address they are (that is how they are dialled), and any IPv6
// address outside global unicast 2000::/3 not named here is refused as
// reserved.
var refusedRanges = []refusedRange{
	rr("0.0.0.0/32", "unspecified", ""),
	rr("0.0.0.0/8", "this-network", "RFC 791"),
	rr("10.0.0.0/8", "private", "RFC 1918"),
	rr("100.64.0.0/10", "shared (carrier-grade NAT)", "RFC 6598"),
	rr("127.0.0.0/8", "loopback", ""),
	rr("169.254.0.0/16", "link-local", ""),
	rr("172.16.0.0/12", "private", "RFC 1918"),
	rr("192.0.0.0/24", "IETF protocol assignment", "RFC 6890"),
	rr("192.0.2.0/24", "documentation", "RFC 5737"),
	rr("192.88.99.0/24", "6to4 relay anycast", "RFC 7526"),
	rr("192.168.0.0/16", "private", "RFC 1918"),
	rr("198.18.0.0/15", "benchmarking", "RFC 2544"),
	rr("198.51.100.0/24", "documentation", "RFC 5737"),
	rr("203.0.113.0/24", "documentation", "RFC 5737"),
	rr("224.0.0.0/4", "multicast", ""),
	rr("255.255.255.255/32", "broadcast", ""),
	rr("240.0.0.0/4", "reserved", "RFC 1112"),

	rr("::/128", "unspecified", ""),
	rr("::1/128", "loopback", ""),
	rr("::/96", "IPv4-compatible (deprecated)", "RFC 4291"),
	{prefix: netip.MustParsePrefix("64:ff9b::/96"), kind: "NAT64", embeds: func(a [16]byte) netip.Addr {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}},
	rr("64:ff9b:1::/48", "local-use NAT64", "RFC 8215"),
	rr("100::/64", "discard-only", "RFC 6666"),
	rr("2001::/23", "IETF protocol assignment (Teredo, benchmarking, ORCHID)", "RFC 2928"),
	rr("2001:db8::/32", "documentation", "RFC 3849"),
	{prefix: netip.MustParsePrefix("2002::/16"), kind: "6to4", embeds: func(a [16]byte) netip.Addr {
		return netip.AddrFrom4([4]byte(a[2:6]))
	}},
	rr("3fff::/20", "documentation", "RFC 9637"),
	rr("fc00::/7", "unique local", "RFC 4193"),
	rr("fe80::/10", "link-local", ""),
	rr("fec0::/10", "site-local (deprecated)", "RFC 3879"),
	rr("ff00::/8", "multicast", ""),
}

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// RefusedRange is one entry of the default-refused list, for
// documentation.
type RefusedRange struct {
	Prefix netip.Prefix
	Kind   string
	// Embedded is set for ranges whose addresses embed an IPv4 address
	// (NAT64, 6to4): such an address is refused when the embedded one is.
	Embedded bool
}

// RefusedRanges returns the ranges that webhooks may not reach unless the
// operator opens them, in the order they are checked. The cloud metadata
// endpoints (MetadataAddrs) lie in these ranges.
func RefusedRanges() []RefusedRange {
	out := make([]RefusedRange, 0, len(refusedRanges))
	for _, r := range refusedRanges {
		out = append(out, RefusedRange{Prefix: r.prefix, Kind: r.kind, Embedded: r.embeds != nil})
	}
	return out
}

// MetadataAddrs returns the cloud metadata endpoints, which only an
// opening of exactly that address lets webhooks reach.
func MetadataAddrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(metadataAddrs))
	for a := range metadataAddrs {
		out = append(out, a)
	}
	return out
}

// ClassifyDestination returns the rule that refuses a by default, and
// true; or false when a is a public unicast address that webhooks may
// reach. An IPv6 zone is ignored; an IPv4-mapped address is judged as
// IPv4.
func ClassifyDestination(a netip.Addr) (DestinationRule, bool) {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return DestinationRule{Kind: "invalid"}, true
	}
	if metadataAddrs[a] {
		return DestinationRule{Kind: "cloud metadata", Range: netip.PrefixFrom(a, a.BitLen()), Metadata: true}, true
	}
	for _, r := range refusedRanges {
		if !r.prefix.Contains(a) {
			continue
		}
		if r.embeds != nil {
			inner, refused := ClassifyDestination(r.embeds(a.As16()))
			if refused {
				inner.Via = &DestinationRule{Kind: r.kind, Range: r.prefix}
			}
			return inner, refused
		}
		return DestinationRule{Kind: r.kind, Range: r.prefix, Ref: r.ref}, true
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return DestinationRule{Kind: "reserved", Range: netip.PrefixFrom(a, 3).Masked(), Ref: "outside global unicast 2000::/3"}, true
	}
	return DestinationRule{}, false
}

// DestinationPolicy is the webhook destination policy. The zero value
// refuses every address ClassifyDestination refuses.
type DestinationPolicy struct {
	// Allow opens ranges that are refused by default. An address in one
	// of them is allowed, except a cloud metadata endpoint, which only an
	// entry of exactly its address (/32, /128) opens. Entries are matched
	// against the address as dialled: open 127.0.0.0/8 for loopback, and
	// 64:ff9b::/96 (not the IPv4 range) for NAT64 forms.
	Allow []netip.Prefix
}

// Refuses returns the rule that refuses a, and true, when webhooks may not
// reach a; false when they may.
func (p DestinationPolicy) Refuses(a netip.Addr) (DestinationRule, bool) {
	a = a.WithZone("").Unmap()
	r, refused := ClassifyDestination(a)
	if !refused {
		return r, false
	}
	for _, o := range p.Allow {
		if o.Contains(a) && (!r.Metadata || o.Bits() == a.BitLen()) {
			return r, false
		}
	}
	return r, true
}

// ReservedHostAddrs returns the addresses a host name has by rule, without
// asking DNS, or nil for other names: "localhost" and names under
// ".localhost" are loopback (RFC 6761), and the cloud providers' metadata
// names are their metadata address wherever they are asked. Webhook URLs
// with these names are judged by these addresses, at creation and at
// delivery, whatever a resolver would say.
func ReservedHostAddrs(host string) []netip.Addr {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	case h == "metadata.google.internal" || h == "metadata.goog" || h == "instance-data" || h == "instance-data.ec2.internal":
		return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	}
	return nil
}
