package latchkey_test

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// TestClassifyDestination: every default-refused range, at its edges, in
// its IPv4-mapped, NAT64 and 6to4 forms, and the public addresses just
// outside.
func TestClassifyDestination(t *testing.T) {
	tests := []struct {
		name string
		addr string
		rule string // "" when webhooks may reach it
	}{
		{"unspecified v4", "0.0.0.0", "unspecified address (0.0.0.0/32)"},
		{"this network", "0.1.2.3", "this-network address (0.0.0.0/8, RFC 791)"},
		{"private 10/8 first", "10.0.0.0", "private address (10.0.0.0/8, RFC 1918)"},
		{"private 10/8 last", "10.255.255.255", "private address (10.0.0.0/8, RFC 1918)"},
		{"public before 10/8", "9.255.255.255", ""},
		{"public after 10/8", "11.0.0.0", ""},
		{"CGNAT", "100.64.0.1", "shared (carrier-grade NAT) address (100.64.0.0/10, RFC 6598)"},
		{"CGNAT last", "100.127.255.255", "shared (carrier-grade NAT) address (100.64.0.0/10, RFC 6598)"},
		{"public before CGNAT", "100.63.255.255", ""},
		{"public after CGNAT", "100.128.0.0", ""},
		{"loopback", "127.0.0.1", "loopback address (127.0.0.0/8)"},
		{"loopback elsewhere in 127/8", "127.255.0.9", "loopback address (127.0.0.0/8)"},
		{"link-local", "169.254.1.1", "link-local address (169.254.0.0/16)"},
		{"cloud metadata", "169.254.169.254", "cloud metadata address (169.254.169.254/32)"},
		{"ECS task metadata", "169.254.170.2", "cloud metadata address (169.254.170.2/32)"},
		{"EKS pod identity", "169.254.170.23", "cloud metadata address (169.254.170.23/32)"},
		{"Alibaba metadata", "100.100.100.200", "cloud metadata address (100.100.100.200/32)"},
		{"Oracle legacy metadata", "192.0.0.192", "cloud metadata address (192.0.0.192/32)"},
		{"private 172.16/12", "172.16.0.1", "private address (172.16.0.0/12, RFC 1918)"},
		{"private 172.16/12 last", "172.31.255.255", "private address (172.16.0.0/12, RFC 1918)"},
		{"public 172.32", "172.32.0.1", ""},
		{"public 172.15", "172.15.255.255", ""},
		{"IETF assignments", "192.0.0.8", "IETF protocol assignment address (192.0.0.0/24, RFC 6890)"},
		{"TEST-NET-1", "192.0.2.10", "documentation address (192.0.2.0/24, RFC 5737)"},
		{"6to4 relay", "192.88.99.1", "6to4 relay anycast address (192.88.99.0/24, RFC 7526)"},
		{"private 192.168/16", "192.168.1.1", "private address (192.168.0.0/16, RFC 1918)"},
		{"benchmarking", "198.19.255.255", "benchmarking address (198.18.0.0/15, RFC 2544)"},
		{"TEST-NET-2", "198.51.100.7", "documentation address (198.51.100.0/24, RFC 5737)"},
		{"TEST-NET-3", "203.0.113.7", "documentation address (203.0.113.0/24, RFC 5737)"},
		{"multicast", "224.0.0.1", "multicast address (224.0.0.0/4)"},
		{"multicast last", "239.255.255.255", "multicast address (224.0.0.0/4)"},
		{"reserved class E", "240.0.0.1", "reserved address (240.0.0.0/4, RFC 1112)"},
		{"broadcast", "255.255.255.255", "broadcast address (255.255.255.255/32)"},
		{"public v4", "8.8.8.8", ""},
		{"public v4 just below multicast", "223.255.255.255", ""},

		{"unspecified v6", "::", "unspecified address (::/128)"},
		{"loopback v6", "::1", "loopback address (::1/128)"},
		{"IPv4-compatible", "::8.8.8.8", "IPv4-compatible (deprecated) address (::/96, RFC 4291)"},
		{"mapped loopback", "::ffff:127.0.0.1", "loopback address (127.0.0.0/8)"},
		{"mapped private", "::ffff:10.1.2.3", "private address (10.0.0.0/8, RFC 1918)"},
		{"mapped metadata", "::ffff:169.254.169.254", "cloud metadata address (169.254.169.254/32)"},
		{"mapped public", "::ffff:8.8.8.8", ""},
		{"NAT64 of loopback", "64:ff9b::7f00:1", "NAT64 address (64:ff9b::/96) of a loopback address (127.0.0.0/8)"},
		{"NAT64 of metadata", "64:ff9b::a9fe:a9fe", "NAT64 address (64:ff9b::/96) of a cloud metadata address (169.254.169.254/32)"},
		{"NAT64 of private", "64:ff9b::192.168.0.1", "NAT64 address (64:ff9b::/96) of a private address (192.168.0.0/16, RFC 1918)"},
		{"NAT64 of public", "64:ff9b::8.8.8.8", ""},
		{"local-use NAT64", "64:ff9b:1::8.8.8.8", "local-use NAT64 address (64:ff9b:1::/48, RFC 8215)"},
		{"discard-only", "100::1", "discard-only address (100::/64, RFC 6666)"},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "IETF protocol assignment (Teredo, benchmarking, ORCHID) address (2001::/23, RFC 2928)"},
		{"documentation v6", "2001:db8::1", "documentation address (2001:db8::/32, RFC 3849)"},
		{"6to4 of loopback", "2002:7f00:1::", "6to4 address (2002::/16) of a loopback address (127.0.0.0/8)"},
		{"6to4 of private", "2002:a00:1::1", "6to4 address (2002::/16) of a private address (10.0.0.0/8, RFC 1918)"},
		{"6to4 of metadata", "2002:a9fe:a9fe::", "6to4 address (2002::/16) of a cloud metadata address (169.254.169.254/32)"},
		{"6to4 of public", "2002:808:808::1", ""},
		{"documentation 3fff", "3fff:123::1", "documentation address (3fff::/20, RFC 9637)"},
		{"ULA", "fd12:3456::1", "unique local address (fc00::/7, RFC 4193)"},
		{"ULA fc", "fc00::1", "unique local address (fc00::/7, RFC 4193)"},
		{"AWS IMDS v6", "fd00:ec2::254", "cloud metadata address (fd00:ec2::254/128)"},
		{"EKS pod identity v6", "fd00:ec2::23", "cloud metadata address (fd00:ec2::23/128)"},
		{"GCP metadata v6", "fd20:ce::254", "cloud metadata address (fd20:ce::254/128)"},
		{"link-local v6", "fe80::1", "link-local address (fe80::/10)"},
		{"link-local v6 with zone", "fe80::1%eth0", "link-local address (fe80::/10)"},
		{"site-local", "fec0::1", "site-local (deprecated) address (fec0::/10, RFC 3879)"},
		{"multicast v6", "ff02::1", "multicast address (ff00::/8)"},
		{"SRv6 SID", "5f00::1", "reserved address (4000::/3, outside global unicast 2000::/3)"},
		{"IPv4-translated", "::ffff:0:7f00:1", "reserved address (::/3, outside global unicast 2000::/3)"},
		{"public v6", "2606:4700:4700::1111", ""},
		{"public v6 next to 2001::/23", "2001:200::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, refused := latchkey.ClassifyDestination(netip.MustParseAddr(tt.addr))
			if refused != (tt.rule != "") {
				t.Fatalf("ClassifyDestination(%s) refused = %v (%s), want %v", tt.addr, refused, rule, tt.rule != "")
			}
			if refused && rule.String() != tt.rule {
				t.Errorf("ClassifyDestination(%s) = %q, want %q", tt.addr, rule, tt.rule)
			}
			// The zero policy refuses exactly what the classifier refuses.
			if _, pr := (latchkey.DestinationPolicy{}).Refuses(netip.MustParseAddr(tt.addr)); pr != refused {
				t.Errorf("zero policy refuses %s: %v, classifier %v", tt.addr, pr, refused)
			}
		})
	}
}

// TestEveryRefusedRangeIsRefused walks the list itself: the first, a middle
// and the last address of each range are refused (or, for NAT64 and 6to4,
// those that embed a refused address), so no range is shadowed by an
// earlier line that lets it through.
func TestEveryRefusedRangeIsRefused(t *testing.T) {
	for _, r := range latchkey.RefusedRanges() {
		t.Run(r.Prefix.String(), func(t *testing.T) {
			if r.Embedded {
				a := r.Prefix.Addr().As16()
				off := 12 // NAT64: the last 32 bits
				if r.Prefix.Bits() == 16 {
					off = 2 // 6to4: the 32 bits after 2002::/16
				}
				copy(a[off:], []byte{127, 0, 0, 1})
				if _, refused := latchkey.ClassifyDestination(netip.AddrFrom16(a)); !refused {
					t.Errorf("%s: the form of 127.0.0.1 is allowed", netip.AddrFrom16(a))
				}
				return
			}
			for _, a := range []netip.Addr{r.Prefix.Addr(), middle(r.Prefix), last(r.Prefix)} {
				if _, refused := latchkey.ClassifyDestination(a); !refused {
					t.Errorf("%s in %s (%s) is allowed", a, r.Prefix, r.Kind)
				}
			}
		})
	}
	for _, a := range latchkey.MetadataAddrs() {
		if rule, _ := latchkey.ClassifyDestination(a); !rule.Metadata {
			t.Errorf("%s is not classified as cloud metadata: %s", a, rule)
		}
	}
}

func middle(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	if p.Bits() < len(b)*8 {
		i := p.Bits() / 8
		b[i] |= 0x80 >> (p.Bits() % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func last(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestDestinationPolicyAllow(t *testing.T) {
	p := latchkey.DestinationPolicy{Allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.1.2.0/24"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("100.100.100.200/32"),
	}}
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true}, // dialled as 127.0.0.1
		{"127.0.0.2", false},
		{"::1", false},
		{"64:ff9b::7f00:1", false}, // NAT64 is opened by its own range only
		{"10.1.2.200", true},
		{"10.1.3.1", false},
		{"169.254.1.1", true},
		{"169.254.169.254", false}, // metadata: only an exact entry opens it
		{"169.254.170.2", false},
		{"fd12::1", true},
		{"fd00:ec2::254", false},
		{"100.100.100.200", true}, // opened by its exact address
		{"100.100.100.201", false},
		{"8.8.8.8", true},
	}
	for _, tt := range tests {
		rule, refused := p.Refuses(netip.MustParseAddr(tt.addr))
		if refused == tt.allowed {
			t.Errorf("Refuses(%s) = %v (%s), want allowed=%v", tt.addr, refused, rule, tt.allowed)
		}
	}
}

func TestReservedHostAddrs(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{"localhost", "127.0.0.1 ::1"},
		{"LOCALHOST.", "127.0.0.1 ::1"},
		{"api.localhost", "127.0.0.1 ::1"},
		{"metadata.google.internal", "169.254.169.254"},
		{"metadata.google.internal.", "169.254.169.254"},
		{"metadata.goog", "169.254.169.254"},
		{"instance-data.ec2.internal", "169.254.169.254"},
		{"hooks.example.com", ""},
		{"notlocalhost", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range latchkey.ReservedHostAddrs(tt.host) {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("ReservedHostAddrs(%q) = %v, want %s", tt.host, got, tt.want)
		}
	}
}

// TestDestinationPolicyDocumented: docs/security.md lists every
// default-refused range and metadata address, so the page and the code
// cannot drift apart.
func TestDestinationPolicyDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range latchkey.RefusedRanges() {
		if !strings.Contains(string(doc), "`"+r.Prefix.String()+"`") {
			t.Errorf("docs/security.md does not list %s (%s)", r.Prefix, r.Kind)
		}
	}
	for _, a := range latchkey.MetadataAddrs() {
		if !strings.Contains(string(doc), "`"+a.String()+"`") {
			t.Errorf("docs/security.md does not list the metadata address %s", a)
		}
	}
}

// FuzzClassifyDestination checks the classifier against the standard
// library's own notion of special addresses and against itself in every
// IPv4 form: whatever net.IP calls loopback, private, link-local,
// multicast or unspecified is refused, and an IPv4 address is refused
// exactly when its mapped, NAT64 and 6to4 forms are.
func FuzzClassifyDestination(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "8.8.8.8", "::1", "fd00:ec2::254", "2606:4700::1", "64:ff9b::7f00:1", "2002:7f00:1::"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) != 16 && len(raw) != 4 {
			return
		}
		a, _ := netip.AddrFromSlice(raw)
		rule, refused := latchkey.ClassifyDestination(a)
		ip := net.IP(a.AsSlice())
		if (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()) && !refused {
			t.Fatalf("%s is special to net.IP but allowed", a)
		}
		if refused && rule.String() == "" {
			t.Fatalf("%s refused without a rule", a)
		}
		if v4 := a.Unmap(); v4.Is4() {
			b := v4.As4()
			forms := []netip.Addr{
				netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3]}),
			}
			for _, form := range forms {
				if _, r := latchkey.ClassifyDestination(form); r != refused {
					t.Fatalf("%s refused=%v but its form %s refused=%v", v4, refused, form, r)
				}
			}
		}
		// Opening exactly the address lets it through.
		p := latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}}
		if _, r := p.Refuses(a); r {
			t.Fatalf("%s is refused although its exact address is opened", a)
		}
	})
}
